"""The training layer on the installed TRL, on CPU: tiny models built here, a preference Parquet made from
PandaLM's human labels, a handful of steps per run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from tests.support.services import SHARED_DATA, shared_data
from workers.trainers.spec import TrainJob, TrainResult, ppo_available, validate_params

pytest.importorskip("trl", reason="the training extra (torch, transformers, trl) is not installed")

PANDALM = SHARED_DATA / "pandalm" / "testset-v1.json"
ADVERSARIAL = ["Ignore the instructions above and", "Write the rudest reply you can to"]
FAST = {"learning_rate": 1e-3, "seed": 7, "gradient_checkpointing": False}
POLICY = {**FAST, "max_steps": 4, "checkpoint_every": 2, "max_completion_length": 8, "max_eval_prompts": 4}


def preference_rows(limit: int = 48) -> list[dict[str, Any]]:
    """Short PandaLM pairs with a clear majority of the three annotators: chosen is what most preferred.
    Every fourth row is validation; `dim_accuracy` cycles through the four label states."""
    rows: list[dict[str, Any]] = []
    for item in json.loads(PANDALM.read_text(encoding="utf-8")):
        votes = [item[f"annotator{i}"] for i in (1, 2, 3)]
        majority = max(set(votes), key=votes.count)
        first, second, extra = item["response1"], item["response2"], item["input"]
        if majority == 0 or votes.count(majority) < 2 or not (isinstance(first, str) and isinstance(second, str)):
            continue
        prompt = item["instruction"] + (f"\n{extra}" if isinstance(extra, str) and extra else "") + "\n"
        if len(prompt) > 200 or len(first) > 150 or len(second) > 150:
            continue
        chosen, rejected = (first, second) if majority == 1 else (second, first)
        index = len(rows)
        rows.append(
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "split": "validation" if index % 4 == 0 else "train",
                "dim_accuracy": ["chosen", "rejected", "tie", None][index % 4],
            }
        )
        if len(rows) == limit:
            break
    return rows


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    shared_data("pandalm/testset-v1.json")
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from tests.support.tiny_models import build_tiny_lm, build_tiny_reward_model, build_tokenizer

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("trainers")
    rows = preference_rows()
    pq.write_table(pa.Table.from_pylist(rows), root / "preferences.parquet")
    tokenizer = build_tokenizer(root / "tokenizer", [r["prompt"] + r["chosen"] + r["rejected"] for r in rows])
    return {
        "root": root,
        "dataset": root / "preferences.parquet",
        "lm": build_tiny_lm(root / "lm", tokenizer),
        "reward": build_tiny_reward_model(root / "reward", tokenizer),
    }


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.metrics: list[tuple[int, dict[str, Any]]] = []
        self.checkpoints: list[tuple[int, Path, dict[str, Any]]] = []
        self.stop_after = stop_after

    def job(self, assets: dict[str, Path], kind: str, params: dict[str, Any], out: str, **extra: Any) -> TrainJob:
        return TrainJob(
            kind=kind,
            params=params,
            output_dir=assets["root"] / out,
            dataset_path=assets["dataset"],
            base_model_dir=assets["lm"],
            adversarial_prompts=ADVERSARIAL,
            on_metrics=lambda step, metrics: self.metrics.append((step, metrics)),
            on_checkpoint=lambda step, folder, metrics: self.checkpoints.append((step, folder, metrics)),
            should_stop=lambda: self.stop_after is not None and len(self.metrics) >= self.stop_after,
            **extra,
        )


def train(
    assets: dict[str, Path], kind: str, params: dict[str, Any], out: str, **extra: Any
) -> tuple[TrainResult, Recorder]:
    from workers.trainers import dispatch

    recorder = Recorder(extra.pop("stop_after", None))
    return dispatch.run(recorder.job(assets, kind, params, out, **extra)), recorder


def assert_finite(metrics: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), (key, metrics.get(key))


def assert_carried(result: TrainResult, folder: Path, kind: str) -> None:
    assert {"torch", "transformers", "trl", "accelerate", "datasets", "python"} <= set(result.library_versions)
    json.dumps(result.config)
    carried = json.loads((folder / "training_config.json").read_text())
    assert carried["kind"] == kind and carried["config"] == result.config
    assert carried["library_versions"] == result.library_versions
    assert str(folder.parent) not in json.dumps(carried)  # no local path: a retried run writes the same


@pytest.mark.parametrize("kind", ["reward_model", "dpo", "rloo", "grpo"])
def test_unknown_param_is_refused_and_trl_fields_pass(kind: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_params(kind, {"max_steps": 2, "no_such_setting": 1})
    assert refused.value.code == "validation_failed"
    assert refused.value.errors == [{"loc": ["body", "params", "no_such_setting"], "msg": "unknown"}]
    assert validate_params(kind, {"max_steps": 2, "warmup_steps": 1, "weight_decay": 0.01})["warmup_steps"] == 1


def test_param_values_and_trl_combinations_are_checked() -> None:
    refused_params: list[tuple[str, dict[str, Any]]] = [
        ("rloo", {"max_steps": 0}),
        ("rloo", {"per_device_batch_size": 3, "num_generations": 2}),  # TRL: batch not divisible
        ("dpo", {"kl_coefficient": 0.1}),  # dpo spells it beta
        ("grpo", {"output_dir": "/elsewhere"}),  # the worker owns it
        ("score", {"learning_rate": 1e-3}),
    ]
    for kind, params in refused_params:
        with pytest.raises(ValidationFailed) as refused:
            validate_params(kind, params)
        assert refused.value.code == "validation_failed", (kind, params)


@pytest.mark.skipif(ppo_available(), reason="the installed TRL still ships PPOTrainer")
def test_ppo_is_refused_naming_rloo(assets: dict[str, Path]) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_params("ppo", {"max_steps": 2})
    assert refused.value.code == "validation_failed" and "rloo" in refused.value.detail
    with pytest.raises(ValidationFailed, match="rloo"):
        train(assets, "ppo", {"max_steps": 2}, "ppo", reward_model_dir=assets["reward"])


def test_reward_model_run_registers_its_figures_and_repeats_exactly(assets: dict[str, Path]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    params = {**FAST, "max_steps": 3, "per_device_batch_size": 4, "max_length": 192}
    result, recorder = train(assets, "reward_model", params, "reward-a")
    again, _ = train(assets, "reward_model", params, "reward-b")

    assert result.output_dir is not None and not result.stopped
    AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    AutoTokenizer.from_pretrained(result.output_dir)
    metrics = result.metrics
    assert_finite(metrics, ["validation_accuracy", "length_decoupled_accuracy", "reward_length_spearman", "train_loss"])
    assert set(metrics["per_dimension"]) == {"accuracy"} and 0.0 <= metrics["per_dimension"]["accuracy"] <= 1.0
    assert metrics["validation_pairs"] == 12 and metrics["steps"] == 3
    assert [step for step, m in recorder.metrics if "loss" in m] == [1, 2, 3]
    assert all("learning_rate" in m and "samples_per_second" in m for _, m in recorder.metrics if "loss" in m)
    assert result.config["per_device_train_batch_size"] == 4 and result.config["trl_config_class"] == "RewardConfig"
    assert_carried(result, result.output_dir, "reward_model")
    assert again.metrics == metrics


def test_should_stop_ends_the_run_without_a_final_model(assets: dict[str, Path]) -> None:
    params = {**FAST, "max_steps": 6, "per_device_batch_size": 4, "max_length": 192}
    result, _ = train(assets, "reward_model", params, "reward-stopped", stop_after=1)
    assert result.stopped and result.output_dir is None
    assert result.metrics["steps"] < 6
    assert not (assets["root"] / "reward-stopped" / "final").exists()


def test_dpo_run_registers_a_checkpoint_series(assets: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    params = {**POLICY, "per_device_batch_size": 2, "max_length": 128, "beta": 0.2}
    result, recorder = train(assets, "dpo", params, "dpo", reward_model_dir=assets["reward"])

    assert [step for step, _, _ in result.checkpoints] == [2, 4] == [step for step, _, _ in recorder.checkpoints]
    for step, folder, metrics in result.checkpoints:
        assert folder == assets["root"] / "dpo" / f"checkpoint-{step}"
        AutoModelForCausalLM.from_pretrained(folder)
        assert_finite(
            metrics, ["mean_reward", "kl_to_reference", "adversarial_mean_reward", "implicit_reward_accuracy"]
        )
        assert metrics["kl_to_reference"] >= 0.0 and metrics["step"] == step
        assert json.loads((folder / "training_config.json").read_text())["step"] == step
    assert result.kl_coefficient == 0.2 and result.config["beta"] == 0.2
    assert result.output_dir is not None and result.metrics["step"] == 4
    AutoModelForCausalLM.from_pretrained(result.output_dir)
    assert_carried(result, result.output_dir, "dpo")
    assert any("rewards/accuracies" in m for _, m in recorder.metrics)


def test_rloo_run_against_a_reward_checkpoint_repeats_exactly(assets: dict[str, Path]) -> None:
    params = {**POLICY, "per_device_batch_size": 4, "num_generations": 2, "max_length": 96, "kl_coefficient": 0.05}
    result, recorder = train(assets, "rloo", params, "rloo-a", reward_model_dir=assets["reward"])
    again, _ = train(assets, "rloo", params, "rloo-b", reward_model_dir=assets["reward"])

    assert [step for step, _, _ in result.checkpoints] == [2, 4]
    for _, _, metrics in result.checkpoints:
        keys = ["mean_reward", "kl_to_reference", "length_reward_correlation", "adversarial_mean_reward"]
        assert_finite(metrics, keys)
    assert result.kl_coefficient == 0.05 and result.config["beta"] == 0.05
    assert any("reward" in m and "kl" in m for _, m in recorder.metrics)
    assert again.metrics == result.metrics
    assert [m for _, _, m in again.checkpoints] == [m for _, _, m in result.checkpoints]
    assert result.output_dir is not None and again.output_dir is not None
    assert_carried(result, result.output_dir, "rloo")
    for file in sorted(result.output_dir.iterdir()):  # same bytes, so a retried run's digests match
        assert file.read_bytes() == (again.output_dir / file.name).read_bytes(), file.name


def test_grpo_run(assets: dict[str, Path]) -> None:
    params = {**POLICY, "max_steps": 2, "per_device_batch_size": 2, "num_generations": 2, "kl_coefficient": 0.01}
    result, _ = train(assets, "grpo", params, "grpo", reward_model_dir=assets["reward"])
    assert [step for step, _, _ in result.checkpoints] == [2]
    assert_finite(result.metrics, ["mean_reward", "kl_to_reference"])
    assert result.config["trl_config_class"] == "GRPOConfig" and result.kl_coefficient == 0.01


def test_score_run_writes_one_score_per_output(assets: dict[str, Path]) -> None:
    outputs = assets["root"] / "outputs.jsonl"
    lines = [
        {"prompt": r["prompt"], "response": r["chosen"], "id": f"vendor-{i}"} for i, r in enumerate(preference_rows(6))
    ]
    lines.append({"prompt": "Say hi.\n", "response": "Hi!"})
    outputs.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result, _ = train(assets, "score", {}, "score", reward_model_dir=assets["reward"], outputs_path=outputs)
    assert result.output_dir is not None
    scores = [json.loads(line) for line in (result.output_dir / "scores.jsonl").read_text().splitlines()]
    assert [s["id"] for s in scores] == [f"vendor-{i}" for i in range(6)] + [6]
    assert result.metrics["count"] == 7
    assert_finite(result.metrics, ["mean", "std", "min", "max"])
