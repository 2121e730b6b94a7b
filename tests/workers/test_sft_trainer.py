"""The `sft` trainer on the installed TRL, on CPU: a tiny Llama fine-tuned for a few steps on a
prompt-completion Parquet like the one a demonstration set derives; the loss is on completions only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from workers.trainers.spec import TrainJob

pytest.importorskip("trl", reason="the training extra (torch, transformers, trl) is not installed")

FAST = {"learning_rate": 1e-3, "seed": 5, "max_steps": 3, "per_device_batch_size": 2, "gradient_checkpointing": False}
ROWS = [
    {"id": f"d{i}", "prompt_id": f"p{i}", "prompt": f"Question {i}: what is {i} plus {i}?\n", "completion": f"{2 * i}."}
    for i in range(8)
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from tests.support.tiny_models import build_tiny_lm, build_tokenizer

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("sft")
    pq.write_table(pa.Table.from_pylist(ROWS), root / "demonstrations.parquet")
    tokenizer = build_tokenizer(root / "tokenizer", [r["prompt"] + r["completion"] for r in ROWS])
    return {"root": root, "data": root / "demonstrations.parquet", "lm": build_tiny_lm(root / "lm", tokenizer)}


def _job(assets: dict[str, Path], out: str, params: dict[str, Any], seen: list[tuple[int, dict[str, Any]]]) -> TrainJob:
    return TrainJob(
        kind="sft",
        params=params,
        output_dir=assets["root"] / out,
        dataset_path=assets["data"],
        base_model_dir=assets["lm"],
        on_metrics=lambda step, metrics: seen.append((step, metrics)),
    )


def test_sft_trains_on_completions_and_saves_a_loadable_policy(assets: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    from workers.trainers.dispatch import run

    seen: list[tuple[int, dict[str, Any]]] = []
    result = run(_job(assets, "run", FAST, seen))
    assert result.output_dir is not None and not result.stopped
    assert result.metrics["step"] == 3 and result.metrics["examples"] == len(ROWS)
    assert result.metrics["examples_dropped"] == 0
    assert {"mean_token_accuracy", "entropy", "num_tokens"} <= set(result.metrics)
    assert result.config["trl_config_class"] == "SFTConfig" and result.config["use_cpu"] is True
    assert result.config["bf16"] is False and result.config["completion_only_loss"] is None
    assert [step for step, m in seen if "loss" in m] == [1, 2, 3]
    model = AutoModelForCausalLM.from_pretrained(result.output_dir)
    assert model.config.num_hidden_layers == 2
    assert (result.output_dir / "training_config.json").exists()


def test_completion_only_loss_masks_the_prompt(assets: dict[str, Path]) -> None:
    """What TRL computes the loss on (its default for prompt-completion rows): completion tokens only."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from workers.trainers.preference_data import to_dataset
    from workers.trainers.trl_config import build_config

    tokenizer = AutoTokenizer.from_pretrained(assets["lm"])
    trainer = SFTTrainer(
        model=str(assets["lm"]),
        args=build_config("sft", FAST, assets["root"] / "masking"),
        train_dataset=to_dataset({"prompt": [ROWS[1]["prompt"]], "completion": [ROWS[1]["completion"]]}),
        processing_class=tokenizer,
    )
    [example] = list(trainer.train_dataset)
    prompt_tokens = len(tokenizer(ROWS[1]["prompt"])["input_ids"])
    assert all(label == -100 for label in example["labels"][:prompt_tokens])
    assert any(label != -100 for label in example["labels"][prompt_tokens:])


def test_a_max_length_the_prompts_fill_is_refused_not_silently_empty(assets: dict[str, Path]) -> None:
    from workers.trainers.dispatch import run

    with pytest.raises(ValidationFailed) as caught:
        run(_job(assets, "short", {**FAST, "max_length": 3}, []))
    assert caught.value.errors[0]["loc"] == ["params", "max_length"]


def test_chat_prompts_need_a_chat_template(assets: dict[str, Path]) -> None:
    from workers.trainers.sft import training_rows

    chat = '[{"content": "hello", "role": "user"}]'

    class NoTemplate:
        chat_template = None

    rows = training_rows(["plain"], ["reply"], NoTemplate())
    assert rows == {"prompt": ["plain"], "completion": ["reply"]}
    with pytest.raises(ValidationFailed) as caught:
        training_rows([chat], ["reply"], NoTemplate())
    assert caught.value.errors[0]["loc"] == ["inputs", "base_model"]
    with pytest.raises(ValidationFailed):
        training_rows([chat, "plain"], ["a", "b"], NoTemplate())

    class Template:
        chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"

    converted = training_rows([chat], ["reply"], Template())
    assert converted["prompt"] == [[{"content": "hello", "role": "user"}]]
    assert converted["completion"] == [[{"role": "assistant", "content": "reply"}]]


def test_examples_cut_off_by_max_length_are_counted(assets: dict[str, Path], tmp_path: Path) -> None:
    """TRL drops them silently; the run says how many, in its first metrics event and in its figures."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from workers.trainers.dispatch import run

    tokenizer = AutoTokenizer.from_pretrained(assets["lm"])
    longest = max(len(tokenizer(r["prompt"])["input_ids"]) for r in ROWS)
    rows = [*ROWS, {"id": "long", "prompt_id": "long", "prompt": "plus " * 4 * longest, "completion": "no."}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "with-long.parquet")
    seen: list[tuple[int, dict[str, Any]]] = []
    job = _job(assets, "dropping", {**FAST, "max_steps": 1, "max_length": longest + 4}, seen)
    job.dataset_path = tmp_path / "with-long.parquet"
    result = run(job)
    assert result.metrics["examples"] == len(rows) and result.metrics["examples_dropped"] == 1
    assert seen[0] == (0, {"examples_dropped": 1.0, "examples": float(len(rows))})
