"""`ppo` runs: PPO (Schulman et al. 2017, as Ziegler et al. 2019 apply it to language models) against a
registered reward checkpoint, with TRL's PPOTrainer, which TRL ships as `trl.experimental.ppo` up to 1.12.0.
This module imports only in the PPO environment (workers/ppo/requirements.txt).

PPO holds four models: the policy (from the base model), its frozen reference (the base model again), the
reward model and a value model, both from the reward checkpoint (a one-output sequence classifier: the value
head starts as the reward head). The reward model scores the policy's token ids, so the reward checkpoint must
carry the base model's tokenizer. Prompts are the train split's, each once per pass, cut to
`max_length - max_completion_length` tokens, tokenized up front and left-padded, as the trainer expects.

PPOTrainer counts its steps in rollout batches (`total_episodes` prompts), not `max_steps`, returns no loss and
ignores `should_training_stop`: the run's `max_steps` becomes episodes, the loss is read from the last log
record, and a cancelled run ends by an exception out of the step callback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed
from workers.trainers.param_names import DEFAULT_SEED
from workers.trainers.policy_evaluation import truncate_prompts
from workers.trainers.policy_run import CheckpointSeries, finish, make_evaluator, prompt_budget
from workers.trainers.preference_data import load_preferences, to_dataset, unique_prompts
from workers.trainers.progress import RunProgress, silence
from workers.trainers.reward_scoring import RewardScorer
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult
from workers.trainers.trl_config import config_dict, cuda_available

# Our names mapped onto PPOConfig's fields; max_steps, max_length and the series' keys are this layer's.
PPO_NAMES = {
    "learning_rate": "learning_rate",
    "per_device_batch_size": "per_device_train_batch_size",
    "max_completion_length": "response_length",
    "kl_coefficient": "kl_coef",
}


class Stopped(Exception):
    """Raised out of the step callback: PPOTrainer's loop does not read `should_training_stop`."""


class PpoProgress(RunProgress):
    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        control = super().on_step_end(args, state, control, model=model, **kwargs)
        if self.stopped:
            raise Stopped
        return control


def _quiet_experimental() -> None:
    # the experimental module is pinned on purpose (workers/ppo/requirements.txt): no warning per import
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def build_config(params: dict[str, Any], output_dir: Path) -> Any:
    """PPOConfig from the run's params, with what this layer owns (saving, logging, device, precision)."""
    _quiet_experimental()
    from trl.experimental.ppo import PPOConfig

    kwargs: dict[str, Any] = {PPO_NAMES[k]: v for k, v in params.items() if k in PPO_NAMES}
    seed = params.get("seed", DEFAULT_SEED)
    batch = kwargs.get("per_device_train_batch_size", 8)
    config = PPOConfig(
        output_dir=str(output_dir),
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=1,
        report_to="none",
        push_to_hub=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not cuda_available(),
        bf16=False,
        seed=seed,
        data_seed=seed,
        per_device_eval_batch_size=batch,
        # one update per rollout batch of one process: `max_steps` batches (unset: TRL's default, its epochs)
        total_episodes=params["max_steps"] * batch if "max_steps" in params else None,
        num_sample_generations=0,
        stop_token="eos",
        **kwargs,
    )
    return config


def _load_models(base: Path, reward_dir: Path) -> tuple[Any, Any, Any, Any]:
    """Policy, reference, reward and value models, in float32."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    policy = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
    reference = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
    reward = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1, dtype="float32")
    value = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1, dtype="float32")
    return policy, reference, reward, value


def _check_shared_tokenizer(tokenizer: Any, reward_tokenizer: Any) -> None:
    if tokenizer.get_vocab() != reward_tokenizer.get_vocab():
        raise ValidationFailed(
            "a ppo run scores the policy's token ids with the reward model: the reward checkpoint's tokenizer "
            "must be the base model's (train the reward model on this base model, or use kind 'rloo', which "
            "scores text)",
            errors=[{"loc": ["inputs", "reward_checkpoint"], "msg": "tokenizer differs from the base model's"}],
        )


def _prompts(tokenizer: Any, prompts: list[str], budget: int | None, batch: int) -> Any:
    cut = truncate_prompts(tokenizer, prompts, budget)
    if len(cut) < batch:
        raise ValidationFailed(
            f"a ppo run samples whole batches of prompts: the dataset's train split has {len(cut)} distinct "
            f"prompts, fewer than per_device_batch_size ({batch})",
            errors=[{"loc": ["params", "per_device_batch_size"], "msg": "more than the train split's prompts"}],
        )
    return to_dataset({"input_ids": [tokenizer(p)["input_ids"] for p in cut]})


def _last_loss(trainer: Any, vf_coef: float) -> float:
    """PPO's objective at the last step: the clipped policy loss plus `vf_coef` times the value loss."""
    logged = [r for r in trainer.state.log_history if "loss/policy_avg" in r]
    if not logged:
        return float("nan")
    return float(logged[-1]["loss/policy_avg"] + vf_coef * logged[-1]["loss/value_avg"])


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    base = required_folder(job.base_model_dir, "base_model", job.kind)
    reward_dir = required_folder(job.reward_model_dir, "reward_checkpoint", job.kind)
    data = load_preferences(job.dataset_path, needs_pairs=False)

    from transformers import AutoTokenizer

    _quiet_experimental()
    from trl.experimental.ppo import PPOTrainer

    scratch = job.output_dir / "trainer"
    config = build_config(params, scratch)
    effective = config_dict(config)
    carried = provenance(job.kind, params, effective)
    tokenizer = AutoTokenizer.from_pretrained(base, padding_side="left")  # PPO generates from left-padded prompts
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reward_tokenizer = AutoTokenizer.from_pretrained(reward_dir)
    _check_shared_tokenizer(tokenizer, reward_tokenizer)
    budget = prompt_budget(params.get("max_length"), config.response_length)
    batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    train = _prompts(tokenizer, unique_prompts(data.train), budget, batch)
    policy, reference, reward, value = _load_models(base, reward_dir)
    reward.config.pad_token_id = value.config.pad_token_id = tokenizer.pad_token_id
    progress = PpoProgress(job, batch, params.get("checkpoint_every"))
    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=policy,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=train,
        eval_dataset=train,  # PPOTrainer builds an evaluation loader even when it samples nothing from it
        callbacks=[progress],
    )
    silence(trainer)
    # the trainer's own reward model scores the checkpoints' completions: no fifth model in memory
    scorer = RewardScorer(reward, reward_tokenizer, batch_size=config.per_device_eval_batch_size)
    evaluator = make_evaluator(
        params,
        data,
        job,
        AutoTokenizer.from_pretrained(base, padding_side="left"),
        trainer.ref_model,
        scorer,
        max_new_tokens=config.response_length,
        batch_size=config.per_device_eval_batch_size,
    )
    pristine = AutoTokenizer.from_pretrained(base)  # saved as it came: using a tokenizer changes its state

    def policy_of(model: Any) -> Any:
        return trainer.accelerator.unwrap_model(model).policy

    series = CheckpointSeries(job, pristine, evaluator, carried, policy_of)
    progress.at_checkpoint = series
    with contextlib.suppress(Stopped):  # a cancelled run: `progress.stopped` says so to `finish`
        trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    # the policy alone, unwrapped from the policy-and-value module, is the run's model (TRL's own
    # `save_model` needs the same unwrapping; the model is saved with `save_pretrained` as every kind's is)
    trainer.model = policy_of(trainer.model)
    return finish(
        job, trainer, _last_loss(trainer, config.vf_coef), series, progress, effective, params, config.kl_coef
    )
