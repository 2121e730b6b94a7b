"""Building a handoff package through the API: what the archive holds, the document's sections, the
signed manifest and provenance, idempotent rebuilds, and the refusals (not approved, missing field)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from app.core.digests import hex_of
from app.packages import service
from app.packages.gather import gather
from app.records.models import Record
from app.state import AppState
from tests.conftest import World
from tests.factories import criteria_body
from tests.packages.chain import PackageChain
from tests.packages.conftest import Built

SECTIONS = (
    "summary", "warnings", "criteria", "prompts", "training", "batches", "datasets", "reward", "policy", "waivers",
    "lineage", "provenance", "audit", "verification",
)  # fmt: skip
PLOTS = ("qc_per_batch", "agreement_over_time", "reward_distribution", "length_vs_reward", "checkpoint_series")


def _statement(envelope: bytes) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(envelope)["payload"])))


def test_build_registers_a_record_for_the_deployment(built: Built) -> None:
    package = built.package
    assert package["kind"] == "handoff_package" and package["name"] == "prod-v1" and package["version"] == "1"
    assert package["parents"] == [{"id": built.deployment["id"], "kind": "deployment", "role": "deployment"}]
    spec = package["spec"]
    assert spec["archive"] == "sha256:" + hashlib.sha256(built.archive).hexdigest()
    assert spec["size"] == len(built.archive)
    assert package["blobs"] == [{"path": "archive.zip", "digest": spec["archive"], "size": spec["size"]}]
    # readable through the generic collection routes too
    got = built.chain.approver.get(built.chain.url("handoff-packages/prod-v1/latest"))
    assert got.status_code == 200 and got.json()["id"] == package["id"]


def test_archive_holds_every_part(built: Built) -> None:
    files = built.files()
    chain = built.chain
    assert {"handoff.html", "handoff.pdf", "manifest.dsse.json", "signing-key.pem"} <= set(files)
    assert {f"plots/{p}.png" for p in PLOTS} <= set(files)
    assert all(files[f"plots/{p}.png"].startswith(b"\x89PNG") for p in PLOTS)
    expected = [
        chain.criteria, chain.prompt_set, *chain.batches, chain.dataset, chain.base, chain.reward, chain.reward_eval,
        *chain.series, *chain.evaluations, built.deployment,
    ]  # fmt: skip
    for record in expected:
        as_api = chain.approver.get(f"/v1/records/{record['id']}").json()
        assert json.loads(files[f"records/{record['id']}.json"]) == as_api
    assert files["handoff.pdf"].startswith(b"%PDF")


def test_manifest_lists_every_file_and_record(built: Built) -> None:
    files = built.files()
    envelope = json.loads(files["manifest.dsse.json"])
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [set(s) for s in envelope["signatures"]] == [{"keyid", "sig"}]
    statement = _statement(files["manifest.dsse.json"])
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    for path, data in files.items():
        if path != "manifest.dsse.json":
            assert subjects.pop(path) == hashlib.sha256(data).hexdigest()
    records = {path.removeprefix("records/").removesuffix(".json") for path in files if path.startswith("records/")}
    assert set(subjects) == {f"record:{r}" for r in records}
    for record_id in records:
        assert subjects[f"record:{record_id}"] == hex_of(json.loads(files[f"records/{record_id}.json"])["digest"])
    predicate = statement["predicate"]
    assert predicate["deployment"]["id"] == built.deployment["id"]
    assert {
        "child": built.deployment["id"],
        "parent": built.chain.chosen["id"],
        "role": "policy_checkpoint",
    } in predicate["lineage"]["edges"]
    assert [d["type"] for d in predicate["decisions"]] == ["approved"]
    assert any(e["action"] == "deployment.approved" for e in predicate["audit_events"])
    assert any(e["target"] == f"run:{built.chain.run['id']}" for e in predicate["audit_events"])


def test_provenance_per_training_run_with_input_digests(built: Built) -> None:
    files = built.files()
    chain = built.chain
    provenance = [_statement(data) for path, data in files.items() if path.startswith("provenance/")]
    assert all(p["predicateType"] == "https://slsa.dev/provenance/v1" for p in provenance)
    trained = {chain.reward["id"], *(c["id"] for c in chain.series)}
    by_subject = {
        s["name"].removeprefix("record:"): p for p in provenance for s in p["subject"] if "/" not in s["name"]
    }
    assert set(by_subject) == trained
    reward = by_subject[chain.reward["id"]]["predicate"]
    assert reward["buildDefinition"]["buildType"] == "https://rlhf-registry.dev/buildtypes/training-run/v1"
    assert reward["buildDefinition"]["externalParameters"]["params"] == {"max_steps": 1}
    assert reward["runDetails"]["metadata"]["invocationId"] == f"run:{chain.run['id']}"
    assert f"provenance/run-{chain.run['id']}.json" in files
    declared = by_subject[chain.chosen["id"]]["predicate"]["buildDefinition"]
    assert declared["buildType"] == "https://rlhf-registry.dev/buildtypes/declared-training/v1"
    assert f"record:{chain.reward['id']}" in {d["name"] for d in declared["resolvedDependencies"]}
    dependencies = reward["buildDefinition"]["resolvedDependencies"]
    named = {d["name"]: d["digest"]["sha256"] for d in dependencies}
    assert named[f"record:{chain.dataset['id']}"] == hex_of(chain.dataset["digest"])
    assert named[f"record:{chain.base['id']}"] == hex_of(chain.base["digest"])
    assert f"record:{chain.base['id']}/files/model.safetensors" in named


def test_html_is_self_contained_with_every_section(built: Built) -> None:
    html = built.files()["handoff.html"].decode()
    tags = re.findall(r"<[a-zA-Z][^>]*>", html)
    attribute = re.compile(r"""\b(?:src|href|action|poster|data|srcset)\s*=\s*["']?\s*([^"'\s>]+)""", re.I)
    fetched = [url for tag in tags for url in attribute.findall(tag)]
    assert fetched and all(url.startswith("data:") for url in fetched), [u for u in fetched if u[:5] != "data:"]
    assert not re.search(r"url\(\s*['\"]?(?!data:)", html), "a stylesheet url() would be fetched"
    assert not re.search(r"<(?:script|link|iframe|object|embed|base)\b", html, re.I)
    assert not re.search(r"@import", html)
    # registered text is printed, never interpreted
    assert "&lt;script&gt;fetch(&#39;https://evil.example/&#39;)&lt;/script&gt;" in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    for plot in PLOTS:
        assert f'id="plot-{plot}"' in html, plot
    chain = built.chain
    for text in (
        "Read both answers fully before choosing.",  # the playbook
        "Stratified sample of week-46 traffic.",  # the sampling procedure
        "hallucinated_citation",
        "vendor-b-week-48",
        "best human preference at step 100",  # why the deployed checkpoint
        chain.approver.principal,
        "<svg",
    ):
        assert text in html, text
    assert "QC gate warn" in html or "QC gate pass" not in html


def test_rebuild_is_idempotent_until_something_changes(built: Built) -> None:
    chain = built.chain
    again = chain.build(built.deployment)
    assert again.status_code == 200 and again.json()["id"] == built.package["id"]
    chain.evaluation(chain.series[2], "kl", "late-kl")  # new evidence about the series
    changed = chain.build(built.deployment)
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == "2" and changed.json()["spec"]["archive"] != built.package["spec"]["archive"]


def test_archive_bytes_are_reproducible(built: Built, stack: AppState) -> None:
    uow = stack.unit_of_work(request_id="test", write=False)
    try:
        deployment = uow.session.get(Record, built.deployment["id"])
        assert deployment is not None
        closure = gather(uow.session, deployment, built.chain.project)
        first = service.assemble(closure, stack.blobs, name="x", inputs="sha256:" + "0" * 64, key=stack.signing_key)
        time.sleep(1.1)  # a second later: nothing in the archive may depend on the clock
        second = service.assemble(closure, stack.blobs, name="x", inputs="sha256:" + "0" * 64, key=stack.signing_key)
    finally:
        uow.close()
    assert first.data == second.data, "the archives differ"


def test_not_approved_deployment_is_refused(built: Built) -> None:
    chain = built.chain
    proposed = chain.deployment(name="candidate")
    refused = chain.build(proposed)
    assert refused.status_code == 409 and refused.json()["code"] == "deployment_not_approved"
    rejected = chain.approver.post(
        chain.url(f"deployments/candidate/{proposed['version']}/reject"), json={"note": "no"}
    )
    assert rejected.status_code == 201
    assert chain.build(proposed).json()["code"] == "deployment_not_approved"
    by_name = chain.approver.post(
        chain.url("handoff-packages"), json={"deployment": {"name": "candidate", "version": proposed["version"]}}
    )
    assert by_name.json()["code"] == "deployment_not_approved"


def test_build_needs_the_approver_role(built: Built) -> None:
    chain = built.chain
    refused = chain.build(built.deployment, api=chain.trainer)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    viewer = chain.world.member(chain.project, "viewer")
    assert chain.download(built.package, api=viewer) == built.archive


def test_bad_bodies(built: Built) -> None:
    chain = built.chain
    for body, code in (
        ({}, "validation_failed"),
        ({"deployment": {"id": built.deployment["id"]}, "spec": {}}, "validation_failed"),
        ({"deployment": {"id": chain.chosen["id"]}}, "missing_reference"),
        ({"deployment": {"name": "nope", "version": "1"}}, "missing_reference"),
    ):
        response = chain.approver.post(chain.url("handoff-packages"), json=body)
        assert response.json()["code"] == code, (body, response.text)


def test_missing_playbook_fails_the_build_naming_it(stack: AppState, _clients: TestClient) -> None:
    chain = PackageChain(World(stack, _clients), criteria=criteria_body(playbook=""))
    refused = chain.build(chain.approved())
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"
    problem = refused.json()
    assert "criteria assistant-quality v1.0.0: spec.playbook" in problem["detail"]
    assert ["criteria", "assistant-quality", "1.0.0", "spec", "playbook"] in [e["loc"] for e in problem["errors"]]
    assert chain.approver.get(chain.url("handoff-packages")).json()["items"] == []


def test_missing_length_bias_figures_fail_the_build(stack: AppState, _clients: TestClient) -> None:
    metrics = {"validation_accuracy": 0.7, "per_dimension": {"accuracy": 0.7}}
    chain = PackageChain(World(stack, _clients), reward_metrics=metrics)
    refused = chain.build(chain.approved())
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"
    assert "reward_checkpoint rm v1: spec.metrics.reward_length_spearman" in refused.json()["detail"]


def test_reward_accuracy_by_dimension_may_be_empty_and_the_package_says_why(
    stack: AppState, _clients: TestClient
) -> None:
    """Data with one overall label per pair (PandaLM) has no per-dimension accuracy: the package says so."""
    metrics = {"validation_accuracy": 0.7, "reward_length_spearman": 0.1, "per_dimension": {}}
    chain = PackageChain(World(stack, _clients), reward_metrics=metrics)
    built = chain.build(chain.approved())
    assert built.status_code == 201, built.text
    record = built.json()
    archive = chain.approver.get(chain.url(f"handoff-packages/{record['name']}/{record['version']}/download"))
    with zipfile.ZipFile(io.BytesIO(archive.content)) as package:
        html = package.read("handoff.html").decode()
    assert "Accuracy by dimension: not measured" in html
