"""The runs that evaluate rather than train: `campaign` and `judge`.

A campaign run has every checkpoint of the policy run it names (pinned when it was queued) and their
reference model answer the evaluation prompts of a prompt set (workers.trainers.campaign), and registers
an `evaluation_campaign` citing the responses; the registry builds the blinded tasks from them. A judge
run judges every pair with a reward checkpoint's scores, or a policy checkpoint or base model prompted
as a judge (workers.trainers.judge): a campaign's
tasks become an `ai_preference` evaluation of the campaign, a batch's pairs an AI-labelled annotation
batch. Either way a share of the pairs (the project policy's `ai_review_share`, stratified by prompt
source) is drawn for human review, and every label names the judge as `ai:<name>@<version>`: AI judgments
are never taken for human ones.

Models are loaded one at a time and each folder removed once used, so a long series needs the disk and
memory of one checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.db import utcnow
from app.evaluations.sampling import review_sample
from app.evaluations.tasks import load_tasks
from app.kinds.annotation_batch import items_of
from app.kinds.policy import DEFAULT_POLICY
from app.kinds.prompt_set import prompts_of
from app.records.models import Record
from app.records.service import effective_policy
from app.runs.models import Run
from app.state import AppState
from app.storage.base import BlobInfo, put_bytes
from workers import outputs
from workers.executor import download_folder, during, record_event
from workers.trainers.campaign import Generation, evaluation_prompts, generate
from workers.trainers.environment import go_offline, library_versions
from workers.trainers.judge import judge_pairs, load_judge
from workers.trainers.spec import validate_params

KINDS = ("campaign", "judge")
DEFAULT_SEED = 0  # a judge run's review sample draws from it, as a campaign's tasks do


@dataclass(frozen=True)
class Pair:
    """Two responses to one prompt, as judged: `a` first. `item` is the batch item it came from."""

    id: str
    source: str
    prompt: str
    response_a: str
    response_b: str
    item: dict[str, Any] = field(default_factory=dict)


def execute(state: AppState, run: Run, tmp: Path, should_stop: Callable[[], bool]) -> bool:
    """Generate or judge, then register the run's one output; False when asked to stop before it."""
    with during("checking the params"):
        params = validate_params(run.kind, run.params)
    go_offline()
    if run.kind == "campaign":
        return _campaign(state, run, params, tmp, should_stop)
    return _judge(state, run, params, tmp, should_stop)


def _record(state: AppState, record_id: str) -> Record:
    with state.sessions.read() as session:
        record = session.get(Record, record_id)
    assert record is not None  # pinned when the run was queued; records are never deleted
    return record


def _jsonl(state: AppState, rows: Sequence[dict[str, Any]]) -> BlobInfo:
    return put_bytes(state.blobs, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode())


def _provenance(run: Run, config: dict[str, Any]) -> dict[str, Any]:
    return {"config": config, "library_versions": library_versions(), "run_id": run.id}


def _label(model: dict[str, Any]) -> str:
    return f"{model['kind']} {model['name']} v{model['version']}"


def _campaign(state: AppState, run: Run, params: dict[str, Any], tmp: Path, should_stop: Callable[[], bool]) -> bool:
    generation = Generation.of(params)
    with during("reading the prompt set"):
        rows = prompts_of(_record(state, run.inputs["prompt_set"]["id"]), state.blobs).to_pylist()
        prompts = evaluation_prompts(rows, params.get("max_prompts"), generation.seed)
    pinned = run.inputs["policy_run"]
    models = [pinned["reference"], *pinned["checkpoints"]]
    responses: list[dict[str, Any]] = []
    for step, model in enumerate(models, start=1):
        if should_stop():
            return False
        texts = _answers(state, run, model, [p["text"] for p in prompts], generation, tmp / f"model-{step}")
        responses += [
            {"prompt_id": p["id"], "model": model["id"], "response": t} for p, t in zip(prompts, texts, strict=True)
        ]
        mean_length = sum(len(t) for t in texts) / max(1, len(texts))
        record_event(
            state, run.id, "metrics", {"step": step, "models": len(models), "mean_response_length": mean_length}
        )
    with during("registering the campaign"):
        blob = _jsonl(state, responses)
        body = {
            "name": run.output_name,
            "checkpoints": [{"id": c["id"]} for c in pinned["checkpoints"]],
            "reference": {"id": pinned["reference"]["id"]},
            "prompt_set": {"id": run.inputs["prompt_set"]["id"]},
            "spec": {
                "responses_blob": blob.digest,
                "pairing": params.get("pairing", "reference"),
                "seed": generation.seed,
                "generation": {**generation.recorded(), "policy_run": pinned["id"]},
                "metadata": _provenance(run, generation.recorded()),
            },
        }
        outputs.register_output(state, run, "evaluation_campaign", body, [], "final", cited=[blob])
    return True


def _answers(
    state: AppState, run: Run, model: dict[str, Any], prompts: list[str], generation: Generation, folder: Path
) -> list[str]:
    """One model's responses to the prompts; its folder is removed once it has answered."""
    record_event(
        state, run.id, "log", {"message": f"{_label(model)} answers {len(prompts)} prompts", "model": model["id"]}
    )
    with during(f"generating the responses of {_label(model)}"):
        download_folder(state, _record(state, model["id"]), folder)
        texts = generate(folder, prompts, generation)
        shutil.rmtree(folder)
    return texts


def _judge(state: AppState, run: Run, params: dict[str, Any], tmp: Path, should_stop: Callable[[], bool]) -> bool:
    judge = _record(state, run.inputs["judge"]["id"])
    evaluator = f"ai:{judge.name}@{judge.version}"
    with during("reading the pairs to judge"):
        pairs = _campaign_pairs(state, run) if "campaign" in run.inputs else _batch_pairs(state, run)
    with during(f"downloading the judge {_label(run.inputs['judge'])}"):
        folder = download_folder(state, judge, tmp / "judge")
    if should_stop():
        return False
    tie_margin = float(params.get("tie_margin", 0.0))
    with during(f"judging {len(pairs)} pairs"):
        scorer = load_judge(
            judge.kind,
            folder,
            max_length=params.get("max_length"),
            batch_size=int(params.get("per_device_batch_size", 8)),
        )
        choices = judge_pairs(
            scorer, [p.prompt for p in pairs], [p.response_a for p in pairs], [p.response_b for p in pairs], tie_margin
        )
    record_event(
        state,
        run.id,
        "metrics",
        {
            "step": 1,
            "pairs": len(pairs),
            **{f"{c}_share": choices.count(c) / max(1, len(choices)) for c in ("a", "b", "tie")},
        },
    )
    with state.sessions.read() as session:
        policy = effective_policy(session.connection(), run.project_id)
    share = float(policy.spec.get("ai_review_share", DEFAULT_POLICY["ai_review_share"]))
    seed = int(params.get("seed", DEFAULT_SEED))
    sample = review_sample([(p.id, p.source) for p in pairs], share, seed)
    config = {
        "judge": evaluator,
        "judge_kind": judge.kind,
        **scorer.recorded(),
        "tie_margin": tie_margin,
        "review": {"share": share, "seed": seed, "policy_version": policy.version, "stratified_by": "prompt source"},
    }
    with during("registering the judgments"):
        if "campaign" in run.inputs:
            _register_evaluation(state, run, pairs, choices, evaluator, sample, config)
        else:
            _register_batch(state, run, judge, pairs, choices, evaluator, sample, config)
    return True


def _campaign_pairs(state: AppState, run: Run) -> list[Pair]:
    tasks = load_tasks(_record(state, run.inputs["campaign"]["id"]), state.blobs)
    return [Pair(t["task_id"], t["source"], t["prompt"], t["response_left"], t["response_right"]) for t in tasks]


def _parent_id(record: Record, role: str) -> str:
    return str(next(p["id"] for p in record.parents if p["role"] == role))


def _batch_pairs(state: AppState, run: Run) -> list[Pair]:
    """Each pair of the batch once (its first item), with its prompt's text and source."""
    batch = _record(state, run.inputs["batch"]["id"])
    prompt_set = _record(state, _parent_id(batch, "prompt_set"))
    prompts = {p["id"]: p for p in prompts_of(prompt_set, state.blobs).to_pylist()}
    pairs: dict[str, Pair] = {}
    for item in items_of(batch, state.blobs).to_pylist():
        if item["pair_id"] not in pairs:
            prompt = prompts[item["prompt_id"]]
            pairs[item["pair_id"]] = Pair(
                item["pair_id"], prompt["source"], prompt["text"], item["response_a"], item["response_b"], item
            )
    return list(pairs.values())


def _register_evaluation(
    state: AppState,
    run: Run,
    pairs: list[Pair],
    choices: list[str],
    evaluator: str,
    sample: list[str],
    config: dict[str, Any],
) -> None:
    judgments = [
        {"task_id": p.id, "evaluator": evaluator, "choice": c, "submitted_at": None}
        for p, c in zip(pairs, choices, strict=True)
    ]
    blob = _jsonl(state, judgments)
    body = {
        "name": run.output_name,
        "campaign": {"id": run.inputs["campaign"]["id"]},
        "spec": {
            "type": "ai_preference",
            "evidence_blob": blob.digest,
            "evidence_format": "jsonl",
            "review_sample": sample,
            "evaluators": [evaluator],
            "metadata": _provenance(run, config),
        },
    }
    outputs.register_output(state, run, "evaluation", body, [], "final", cited=[blob])


ITEM_FIELDS = ("pair_id", "prompt_id", "response_a", "response_b", "model_a", "model_b")


def _register_batch(
    state: AppState,
    run: Run,
    judge: Record,
    pairs: list[Pair],
    choices: list[str],
    evaluator: str,
    sample: list[str],
    config: dict[str, Any],
) -> None:
    """An AI-labelled batch on the input batch's criteria and prompt set: its pairs, each labelled once."""
    batch = _record(state, run.inputs["batch"]["id"])
    items = [
        {
            **{k: p.item[k] for k in ITEM_FIELDS if p.item.get(k) is not None},
            "annotator": evaluator,
            "choice": c,
            "ai_choice": c,
        }
        for p, c in zip(pairs, choices, strict=True)
    ]
    blob = _jsonl(state, items)
    today = utcnow().date().isoformat()
    body = {
        "name": run.output_name,
        "criteria": {"id": _parent_id(batch, "criteria")},
        "prompt_set": {"id": _parent_id(batch, "prompt_set")},
        "spec": {
            "annotator_pool": f"AI judge {judge.kind} {judge.name} v{judge.version} ({run.kind} run {run.id})",
            "tool": "rlhf-registry judge run",
            "collected_from": today,
            "collected_to": today,
            "ai_assisted": True,
            "ai_model": f"{judge.name}@{judge.version}",
            "ai_labelled": True,
            "review_sample": sample,
            "items_blob": blob.digest,
            "metadata": {**_provenance(run, config), "labelled_batch": batch.id},
        },
    }
    outputs.register_output(state, run, "annotation_batch", body, [], "final", cited=[blob])
