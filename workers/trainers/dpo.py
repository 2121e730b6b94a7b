"""`dpo` runs: Direct Preference Optimization with TRL's DPOTrainer (Rafailov et al. 2023).

`beta` is DPO's KL coefficient (the strength of the implicit KL constraint to the reference model) and
is recorded as the run's `kl_coefficient`. The reference is the base model. Checkpoint figures come from
`policy_evaluation`; the reward figures need a reward model (`inputs.reward_checkpoint`), and without one
the checkpoint reports DPO's implicit reward accuracy on validation pairs and the KL only.
"""

from __future__ import annotations

import shutil

from workers.trainers.policy_run import DEFAULT_EVAL_TOKENS, CheckpointSeries, finish, load_reference, make_evaluator
from workers.trainers.preference_data import load_preferences, to_dataset
from workers.trainers.progress import RunProgress, silence
from workers.trainers.reward_scoring import RewardScorer
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult
from workers.trainers.trl_config import build_config, config_dict


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    base = required_folder(job.base_model_dir, "base_model", job.kind)
    data = load_preferences(job.dataset_path)

    from transformers import AutoTokenizer, PreTrainedModel
    from trl.trainer.dpo_trainer import DPOTrainer

    scratch = job.output_dir / "trainer"
    config = build_config("dpo", params, scratch)
    effective = config_dict(config)
    carried = provenance(job.kind, params, effective)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train = to_dataset(
        {
            "prompt": [p.prompt for p in data.train],
            "chosen": [p.chosen for p in data.train],
            "rejected": [p.rejected for p in data.train],
        }
    )
    progress = RunProgress(
        job, config.per_device_train_batch_size * config.gradient_accumulation_steps, params.get("checkpoint_every")
    )
    trainer = DPOTrainer(
        model=str(base), args=config, train_dataset=train, processing_class=tokenizer, callbacks=[progress]
    )
    silence(trainer)
    reference = trainer.ref_model if isinstance(trainer.ref_model, PreTrainedModel) else load_reference(base)
    scorer = None
    if job.reward_model_dir is not None:
        scorer = RewardScorer.load(job.reward_model_dir, batch_size=config.per_device_eval_batch_size)
    evaluator = make_evaluator(
        params,
        data,
        job,
        tokenizer,
        reference,
        scorer,
        max_new_tokens=int(params.get("max_completion_length", DEFAULT_EVAL_TOKENS)),
        batch_size=config.per_device_eval_batch_size,
        beta=config.beta,
    )
    pristine = AutoTokenizer.from_pretrained(base)  # saved as it came: using a tokenizer changes its state
    series = CheckpointSeries(
        job, pristine, evaluator, carried, trainer.accelerator.unwrap_model, trainer.is_world_process_zero
    )
    progress.at_checkpoint = series
    output = trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    return finish(job, trainer, output.training_loss, series, progress, effective, params, config.beta)
