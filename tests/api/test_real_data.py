"""The annotation path on real human-preference data: PandaLM (3 annotators per pair, high
agreement) and PRD Vicuna-80 (crowd ratings, low agreement) registered through the API."""

from __future__ import annotations

import json
from typing import Any

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.importers import ImportResult, from_pandalm, from_prd_vicuna80
from tests.conftest import World
from tests.factories import criteria_body
from tests.importers.spec_checks import shared_data

CODE = {"first": 0, "second": 1, "tie": 2}


def _canonical(item: dict[str, Any]) -> str:
    swapped = item["response_a"] > item["response_b"]
    if item["choice"] == "tie":
        return "tie"
    return "first" if (item["choice"] == "a") != swapped else "second"


def _reference_figures(items: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], float], float]:
    by_pair: dict[str, dict[str, str]] = {}
    for it in items:
        by_pair.setdefault(it["pair_id"], {})[it["annotator"]] = _canonical(it)
    annotators = sorted({it["annotator"] for it in items})
    pairs = sorted(by_pair)
    kappas = {}
    for i, a in enumerate(annotators):
        for b in annotators[i + 1 :]:
            both = [p for p in pairs if a in by_pair[p] and b in by_pair[p]]
            if len(both) >= 2:
                kappas[(a, b)] = cohen_kappa_score([by_pair[p][a] for p in both], [by_pair[p][b] for p in both])
    matrix = np.array(
        [[CODE[by_pair[p][a]] if a in by_pair[p] else np.nan for p in pairs] for a in annotators], dtype=float
    )
    return kappas, float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def _register(world: World, result: ImportResult, batch_name: str) -> tuple[str, dict[str, Any]]:
    project = world.project()
    annotator = world.member(project, "annotator")
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    prompts = [{**p, "privacy_reviewed": True} for p in result.prompts]
    blob = annotator.post("/v1/blobs", content="".join(json.dumps(p) + "\n" for p in prompts).encode()).json()
    body = {
        "name": "prompts",
        "version": "1.0.0",
        "spec": {"sampling_procedure": "public test set", "prompts_blob": blob["digest"]},
    }
    assert annotator.post(f"/v1/projects/{project}/prompt-sets", json=body).status_code == 201
    items = annotator.post("/v1/blobs", content="".join(json.dumps(i) + "\n" for i in result.items).encode()).json()
    meta = {**result.batch_meta, "collected_from": "2023-06-01", "collected_to": "2023-06-30"}
    batch = annotator.post(
        f"/v1/projects/{project}/annotation-batches",
        json={
            "name": batch_name,
            "criteria": {"name": "assistant-quality", "version": "1.0.0"},
            "prompt_set": {"name": "prompts", "version": "1.0.0"},
            "spec": {**{k: v for k, v in meta.items() if v is not None}, "items_blob": items["digest"]},
        },
    )
    assert batch.status_code == 201, batch.text
    return project, batch.json()


def test_pandalm_batch_matches_reference_libraries_and_passes(world: World) -> None:
    result = from_pandalm(shared_data("pandalm/testset-v1.json"))
    project, batch = _register(world, result, "pandalm")
    qc = batch["derived"]["qc"]
    kappas, alpha = _reference_figures(result.items)
    assert len(qc["cohen_kappa"]["pairs"]) == len(kappas) == 3
    for pair in qc["cohen_kappa"]["pairs"]:
        assert pair["kappa"] == pytest.approx(kappas[tuple(pair["annotators"])], abs=1e-9)
    assert qc["krippendorff_alpha"] == pytest.approx(alpha, abs=1e-9)
    assert qc["gate"] == "pass", qc["gate_reasons"]

    annotator = world.member(project, "annotator")
    body = {"batches": [{"id": batch["id"]}], "spec": {"seed": 7}}
    first = annotator.post(f"/v1/projects/{project}/preference-datasets", json={"name": "pandalm-a", **body})
    second = annotator.post(f"/v1/projects/{project}/preference-datasets", json={"name": "pandalm-b", **body})
    assert first.status_code == second.status_code == 201, first.text
    file_a, file_b = first.json()["derived"]["files"][0], second.json()["derived"]["files"][0]
    assert file_a["digest"] == file_b["digest"]
    bytes_a = annotator.get(f"/v1/blobs/{file_a['digest']}").content
    assert len(bytes_a) == file_a["size"]
    counts = first.json()["derived"]["counts"]
    # pairs are consolidated by content (prompt + the two texts): PandaLM's 999 rows hold 863 distinct
    # comparisons, the repeats' votes are pooled
    distinct = {(i["prompt_id"], *sorted((i["response_a"], i["response_b"]))) for i in result.items}
    assert counts["pairs_in"] == len(distinct) == 863
    assert counts["train"] > counts["validation"] > 0


def test_prd_vicuna80_is_gated(world: World) -> None:
    result = from_prd_vicuna80(shared_data("prd-vicuna80/vicuna80"))
    _, batch = _register(world, result, "prd")
    qc = batch["derived"]["qc"]
    assert qc["gate"] in ("block", "warn")
    kappas, alpha = _reference_figures(result.items)
    assert qc["krippendorff_alpha"] == pytest.approx(alpha, abs=1e-9)
    for pair in qc["cohen_kappa"]["pairs"]:
        assert pair["kappa"] == pytest.approx(kappas[tuple(pair["annotators"])], abs=1e-9)
