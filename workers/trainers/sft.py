"""`sft` runs: supervised fine-tuning on demonstrations with TRL's SFTTrainer (Ouyang et al. 2022, step 1).

The demonstration set's training file holds prompt and completion text; TRL computes the loss on the
completion tokens only (its default for prompt-completion data). A prompt stored as a chat (the canonical
JSON of a message list, `app.importers.conversation`) trains in TRL's conversational format, through the
base model's chat template, which it must then have.

TRL drops an example whose completion is cut off entirely by `max_length` (its prompt alone fills it):
such a run is refused when nothing is left, and otherwise says how many were dropped, in its first
metrics event and in the checkpoint's metrics. The output is one policy checkpoint (algorithm `sft`)
that later runs may start from (`inputs.base_model`) and use as their reference model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed
from app.importers.conversation import is_messages
from workers.trainers.model_folders import save_model_folder
from workers.trainers.preference_data import to_dataset
from workers.trainers.progress import RunProgress, silence
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult
from workers.trainers.trl_config import build_config, config_dict

# the figures TRL's SFTTrainer logs that a checkpoint keeps (their last logged value)
LOGGED = ("mean_token_accuracy", "entropy", "num_tokens")


def _refuse(detail: str, loc: list[str]) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"loc": loc, "msg": detail}])


def load_demonstrations(path: Path | None) -> tuple[list[str], list[str]]:
    """Prompts and completions of the training file, in file order."""
    import pyarrow.parquet as pq

    if path is None:
        raise _refuse("an sft run needs inputs.demonstrations", ["inputs", "demonstrations"])
    table = pq.read_table(path, columns=["prompt", "completion"])
    if not table.num_rows:
        raise _refuse("the demonstration set has no rows", ["inputs", "demonstrations"])
    return table["prompt"].to_pylist(), table["completion"].to_pylist()


def _chat(text: str) -> list[dict[str, Any]] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if is_messages(value) else None


def training_rows(prompts: list[str], completions: list[str], tokenizer: Any) -> dict[str, list[Any]]:
    """TRL's prompt-completion columns: text, or conversational where every prompt is a chat."""
    chats = [_chat(p) for p in prompts]
    if all(c is None for c in chats):
        return {"prompt": prompts, "completion": completions}
    if any(c is None for c in chats):
        raise _refuse(
            "the demonstrations mix chat prompts (message lists) with plain-text prompts; TRL trains on one "
            "format at a time: register them as two demonstration sets",
            ["inputs", "demonstrations"],
        )
    if not getattr(tokenizer, "chat_template", None):
        raise _refuse(
            "the demonstrations' prompts are chats, and the base model's tokenizer has no chat template to "
            "render them with",
            ["inputs", "base_model"],
        )
    return {
        "prompt": chats,
        "completion": [[{"role": "assistant", "content": c}] for c in completions],
    }


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    base = required_folder(job.base_model_dir, "base_model", job.kind)
    prompts, completions = load_demonstrations(job.dataset_path)

    from transformers import AutoTokenizer
    from trl.trainer.sft_trainer import SFTTrainer

    scratch = job.output_dir / "trainer"
    config = build_config("sft", params, scratch)
    effective = config_dict(config)
    carried = provenance(job.kind, params, effective)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train = to_dataset(training_rows(prompts, completions, tokenizer))
    progress = RunProgress(job, config.per_device_train_batch_size * config.gradient_accumulation_steps)
    trainer = SFTTrainer(
        model=str(base), args=config, train_dataset=train, processing_class=tokenizer, callbacks=[progress]
    )
    silence(trainer)
    prepared: Any = trainer.train_dataset  # tokenized, truncated, fully masked examples dropped
    dropped = len(train) - len(prepared)
    if not len(prepared):
        raise _refuse(
            f"no demonstration keeps a completion token within max_length={config.max_length}: every prompt "
            "fills it; raise params.max_length",
            ["params", "max_length"],
        )
    if dropped:
        job.on_metrics(0, {"examples_dropped": float(dropped), "examples": float(len(train))})
    output = trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    step = trainer.state.global_step
    figures: dict[str, Any] = {
        "step": step,
        "train_loss": output.training_loss,
        "examples": len(train),
        "examples_dropped": dropped,
        **last_logged(trainer.state.log_history),
    }
    if progress.stopped:
        return TrainResult(None, figures, effective, carried["library_versions"], params=params, stopped=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    # saved as it came: using a tokenizer changes its state (padding and truncation settings)
    final = save_model_folder(
        model, AutoTokenizer.from_pretrained(base), job.output_dir / "final", {**carried, "step": step}
    )
    return TrainResult(final, figures, effective, carried["library_versions"], params=params)


def last_logged(history: list[dict[str, Any]]) -> dict[str, float]:
    """The last value TRL logged of each of `LOGGED` during training."""
    found: dict[str, float] = {}
    for entry in history:
        for name in LOGGED:
            value = entry.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[name] = float(value)
    return found
