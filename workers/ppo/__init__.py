"""The PPO worker environment: TRL removed PPOTrainer in 1.13, so `ppo` runs train in a virtual environment of
their own (`requirements.txt` here, built by `make` as `.venv-ppo`), whose workers consume the `ppo` queue.
Everything but the trainer (claiming a run, its inputs, the checkpoint series, registration) is the main
worker's code, imported from this environment."""
