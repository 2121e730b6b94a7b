"""401 / 403 / 404 exactly as API.md says, over every route and every role."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.security import ROLES
from app.state import AppState
from tests.conftest import Api, World
from tests.factories import (
    agreeing_items,
    batch_body,
    criteria_body,
    evaluation_body,
    evaluation_results,
    prompt_set_body,
)

OUTSIDER = "outsider"
PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # the route template, to check coverage
    path: Callable[[dict[str, str]], str]
    allowed: frozenset[str]  # roles that succeed; OUTSIDER means a principal with no role anywhere
    project_scoped: bool = True
    body: Callable[[dict[str, str]], Any] | None = None
    raw: bytes | None = None
    # for operations that cannot be repeated (approve, revoke): make a fresh target, add it to ctx
    prepare: Callable[[World, dict[str, str]], dict[str, str]] | None = None


def _fresh_deployment(world: World, ctx: dict[str, str]) -> dict[str, str]:
    body = {
        "name": "matrix",
        "policy_checkpoint": {"id": ctx["policy"]},
        "evaluations": [{"id": ctx["eval_hp"]}, {"id": ctx["eval_adv"]}],
        "spec": {"justification": f"matrix {uuid.uuid4()}"},
    }
    record = world.admin.post(f"/v1/projects/{ctx['project']}/deployments", json=body).json()
    return {"fresh_deployment": f"matrix/{record['version']}"}


def _fresh_record(world: World, ctx: dict[str, str]) -> dict[str, str]:
    body = {
        "name": "to-revoke",
        "target": {"id": ctx["policy"]},
        "spec": {"type": "kl", "summary": {"u": str(uuid.uuid4())}},
    }
    return {"fresh_record": world.admin.post(f"/v1/projects/{ctx['project']}/evaluations", json=body).json()["id"]}


def _run_body(ctx: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": ctx["dataset"]}, "base_model": {"id": ctx["base"]}},
        "params": {"max_steps": 1},
    }


def _policy_body(ctx: dict[str, str]) -> dict[str, Any]:
    return {"spec": {"gold_share_min": 0.06}}


_HANDOFF: dict[str, dict[str, str]] = {}


def _handoff(world: World, ctx: dict[str, str]) -> dict[str, str]:
    """An approved deployment with the evidence a handoff package requires, and its package: built once
    per project (the build renders a PDF), then reused by every role's request."""
    if ctx["project"] in _HANDOFF:
        return _HANDOFF[ctx["project"]]
    url = f"/v1/projects/{ctx['project']}"
    metrics = {"validation_accuracy": 0.7, "per_dimension": {"accuracy": 0.7}, "reward_length_spearman": 0.1}
    body: dict[str, Any] = {"datasets": [{"id": ctx["dataset"]}], "base_model": {"id": ctx["base"]}}
    reward = world.admin.post(
        f"{url}/reward-checkpoints", json={"name": "pkg-r", **body, "spec": {"files": ctx["files"], "metrics": metrics}}
    ).json()
    policy = world.admin.post(
        f"{url}/policy-checkpoints",
        json={
            "name": "pkg-p",
            "algorithm": "rloo",
            "reward_checkpoint": {"id": reward["id"]},
            "reference_model": {"id": ctx["base"]},
            "spec": {"files": ctx["files"], "step": 1, "metrics": {"mean_reward": 0.1}},
        },
    ).json()
    evaluations = [
        _evaluation(world, ctx["project"], policy["id"], t, f"pkg-{t}") for t in ("human_preference", "adversarial")
    ]
    deployment = world.admin.post(
        f"{url}/deployments",
        json={
            "name": "pkg-d",
            "policy_checkpoint": {"id": policy["id"]},
            "evaluations": [{"id": e["id"]} for e in evaluations],
            "spec": {"justification": "access matrix"},
        },
    ).json()
    approver = world.member(ctx["project"], "approver")  # not the admin who registered the checkpoint
    approved = approver.post(f"{url}/deployments/pkg-d/{deployment['version']}/approve", json={"note": "matrix"})
    assert approved.status_code == 201, approved.text
    package = approver.post(f"{url}/handoff-packages", json={"deployment": {"id": deployment["id"]}})
    assert package.status_code == 201, package.text
    _HANDOFF[ctx["project"]] = {
        "handoff_deployment": deployment["id"],
        "handoff": f"{package.json()['name']}/{package.json()['version']}",
    }
    return _HANDOFF[ctx["project"]]


ALL = frozenset((*ROLES, OUTSIDER))
VIEWERS = frozenset(ROLES)
ADMIN = frozenset({"admin"})

CASES = [
    Case("GET", "/v1/me", lambda c: "/v1/me", ALL, project_scoped=False),
    Case("GET", "/v1/projects", lambda c: "/v1/projects", ALL, project_scoped=False),
    Case(
        "POST",
        "/v1/projects",
        lambda c: "/v1/projects",
        frozenset(),
        project_scoped=False,
        body=lambda c: {"name": c["new_project"]},
    ),
    Case("GET", "/v1/projects/{project}", lambda c: f"/v1/projects/{c['project']}", VIEWERS),
    Case(
        "PUT",
        "/v1/projects/{project}/members/{member}",
        lambda c: f"/v1/projects/{c['project']}/members/someone-{c['project']}",
        ADMIN,
        body=lambda c: {"role": "viewer"},
    ),
    Case("GET", "/v1/projects/{project}/members", lambda c: f"/v1/projects/{c['project']}/members", ADMIN),
    Case(
        "POST",
        "/v1/projects/{project}/policies",
        lambda c: f"/v1/projects/{c['project']}/policies",
        ADMIN,
        body=_policy_body,
    ),
    Case("GET", "/v1/projects/{project}/policies", lambda c: f"/v1/projects/{c['project']}/policies", VIEWERS),
    Case(
        "GET",
        "/v1/projects/{project}/policies/{name}/{version}",
        lambda c: f"/v1/projects/{c['project']}/policies/default/1",
        VIEWERS,
    ),
    Case(
        "POST",
        "/v1/projects/{project}/criteria",
        lambda c: f"/v1/projects/{c['project']}/criteria",
        ADMIN,
        body=lambda c: criteria_body("1.0.0"),
    ),
    Case("GET", "/v1/projects/{project}/criteria", lambda c: f"/v1/projects/{c['project']}/criteria", VIEWERS),
    Case(
        "GET",
        "/v1/projects/{project}/criteria/{name}/{version}",
        lambda c: f"/v1/projects/{c['project']}/criteria/assistant-quality/1.0.0",
        VIEWERS,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/criteria/{name}/diff",
        lambda c: f"/v1/projects/{c['project']}/criteria/assistant-quality/diff?from=1.0.0",
        VIEWERS,
    ),
    *[
        case
        for collection, writers, body in (
            ("prompt-sets", frozenset({"annotator", "admin"}), lambda c: prompt_set_body(version="1.0.1")),
            (
                "annotation-batches",
                frozenset({"annotator", "admin"}),
                lambda c: batch_body(agreeing_items(6)),
            ),
            ("demonstration-sets", frozenset({"annotator", "trainer", "admin"}), lambda c: demonstration_set_body()),
            (
                "preference-datasets",
                frozenset({"annotator", "trainer", "admin"}),
                lambda c: {"name": "d", "batches": [{"id": c["batch"]}], "spec": {}},
            ),
            (
                "waivers",
                frozenset({"approver", "admin"}),
                lambda c: {
                    "name": "w",
                    "rule": "qc_gate_blocked",
                    "covers": [{"id": c["batch"]}],
                    "spec": {"reason": "access matrix waiver"},
                },
            ),
        )
        for case in (
            Case(
                "POST",
                f"/v1/projects/{{project}}/{collection}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}",
                writers,
                body=body,
            ),
            Case(
                "GET",
                f"/v1/projects/{{project}}/{collection}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}",
                VIEWERS,
            ),
            Case(
                "GET",
                f"/v1/projects/{{project}}/{collection}/{{name}}/{{version}}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}/{c[col]}/latest",
                VIEWERS,
            ),
        )
    ],
    *[
        case
        for collection, writers, body in (
            ("base-models", frozenset({"trainer", "admin"}), lambda c: {"name": "b", "spec": {"files": c["files"]}}),
            (
                "reward-checkpoints",
                frozenset({"trainer", "admin"}),
                lambda c: {
                    "name": "r",
                    "datasets": [{"id": c["dataset"]}],
                    "base_model": {"id": c["base"]},
                    "spec": {"files": c["files"]},
                },
            ),
            (
                "policy-checkpoints",
                frozenset({"trainer", "admin"}),
                lambda c: {
                    "name": "p",
                    "algorithm": "rloo",
                    "reward_checkpoint": {"id": c["reward"]},
                    "reference_model": {"id": c["base"]},
                    "spec": {"files": c["files"]},
                },
            ),
            (
                "evaluation-campaigns",
                frozenset({"trainer", "admin"}),
                lambda c: _campaign_body(c),
            ),
            (
                "evaluations",
                frozenset({"trainer", "admin"}),
                lambda c: {"name": "e", "target": {"id": c["policy"]}, "spec": {"type": "kl"}},
            ),
            (
                "deployments",
                frozenset({"trainer", "approver", "admin"}),
                lambda c: {"name": "d", "policy_checkpoint": {"id": c["policy"]}, "spec": {"justification": "j"}},
            ),
        )
        for case in (
            Case(
                "POST",
                f"/v1/projects/{{project}}/{collection}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}",
                writers,
                body=body,
            ),
            Case(
                "GET",
                f"/v1/projects/{{project}}/{collection}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}",
                VIEWERS,
            ),
            Case(
                "GET",
                f"/v1/projects/{{project}}/{collection}/{{name}}/{{version}}",
                lambda c, col=collection: f"/v1/projects/{c['project']}/{col}/{c[col]}/latest",
                VIEWERS,
            ),
        )
    ],
    *[
        Case(
            "POST",
            f"/v1/projects/{{project}}/deployments/{{name}}/{{version}}/{verb}",
            lambda c, verb=verb: f"/v1/projects/{c['project']}/deployments/{c['fresh_deployment']}/{verb}",
            frozenset({"approver", "admin"}),
            body=lambda c: {"note": "matrix"},
            prepare=_fresh_deployment,
        )
        for verb in ("approve", "reject")
    ],
    Case(
        "POST",
        "/v1/records/{record_id}/revoke",
        lambda c: f"/v1/records/{c['fresh_record']}/revoke",
        frozenset({"approver", "admin"}),
        body=lambda c: {"reason": "matrix"},
        prepare=_fresh_record,
    ),
    Case("GET", "/v1/records/{record_id}/events", lambda c: f"/v1/records/{c['policy']}/events", VIEWERS),
    Case("GET", "/v1/records/{record_id}/lineage", lambda c: f"/v1/records/{c['policy']}/lineage", VIEWERS),
    Case("GET", "/v1/records/{record_id}", lambda c: f"/v1/records/{c['record']}", VIEWERS),
    Case(
        "POST",
        "/v1/blobs",
        lambda c: "/v1/blobs",
        frozenset({"annotator", "trainer", "admin"}),
        project_scoped=False,
        raw=b"access matrix blob",
    ),
    # ctx's blob is referenced by no record: only its uploader (the global admin) may read it
    Case("GET", "/v1/blobs/{digest}", lambda c: f"/v1/blobs/{c['blob']}", frozenset()),
    Case("HEAD", "/v1/blobs/{digest}", lambda c: f"/v1/blobs/{c['blob']}", frozenset()),
    Case(
        "POST",
        "/v1/blobs/uploads",
        lambda c: "/v1/blobs/uploads",
        frozenset({"annotator", "trainer", "admin"}),
        project_scoped=False,
        body=lambda c: {"digest": c["upload_digest"], "size": 10},
    ),
    # an upload session is its owner's alone (the global admin who opened it): everyone else gets 404
    *[
        Case(method, route, lambda c, suffix=suffix: f"/v1/blobs/uploads/{c['upload']}{suffix}", frozenset(), raw=raw)
        for method, route, suffix, raw in (
            ("GET", "/v1/blobs/uploads/{upload_id}", "", None),
            ("PUT", "/v1/blobs/uploads/{upload_id}/parts/{number}", "/parts/1", b"0123456789"),
            ("POST", "/v1/blobs/uploads/{upload_id}/complete", "/complete", None),
            ("DELETE", "/v1/blobs/uploads/{upload_id}", "", None),
        )
    ],
    Case(
        "POST",
        "/v1/projects/{project}/runs",
        lambda c: f"/v1/projects/{c['project']}/runs",
        frozenset({"trainer", "admin"}),
        body=_run_body,
    ),
    Case("GET", "/v1/projects/{project}/runs", lambda c: f"/v1/projects/{c['project']}/runs", VIEWERS),
    Case(
        "GET", "/v1/projects/{project}/runs/{run_id}", lambda c: f"/v1/projects/{c['project']}/runs/{c['run']}", VIEWERS
    ),
    Case(
        "GET",
        "/v1/projects/{project}/runs/{run_id}/events",
        lambda c: f"/v1/projects/{c['project']}/runs/{c['run']}/events",
        VIEWERS,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/evaluation-campaigns/{name}/{version}/tasks",
        lambda c: f"/v1/projects/{c['project']}/evaluation-campaigns/c/1/tasks?format=label-studio",
        VIEWERS,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/policy-checkpoints/{name}/candidate",
        lambda c: f"/v1/projects/{c['project']}/policy-checkpoints/p/candidate",
        VIEWERS,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/runs/{run_id}/checkpoints",
        lambda c: f"/v1/projects/{c['project']}/runs/{c['run']}/checkpoints",
        VIEWERS,
    ),
    Case(
        "POST",
        "/v1/projects/{project}/runs/{run_id}/cancel",
        lambda c: f"/v1/projects/{c['project']}/runs/{c['fresh_run']}/cancel",
        frozenset({"trainer", "admin"}),
        prepare=lambda world, c: {
            "fresh_run": world.admin.post(f"/v1/projects/{c['project']}/runs", json=_run_body(c)).json()["id"]
        },
    ),
    Case(
        "POST",
        "/v1/projects/{project}/handoff-packages",
        lambda c: f"/v1/projects/{c['project']}/handoff-packages",
        frozenset({"approver", "admin"}),
        body=lambda c: {"deployment": {"id": c["handoff_deployment"]}},
        prepare=_handoff,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/handoff-packages",
        lambda c: f"/v1/projects/{c['project']}/handoff-packages",
        VIEWERS,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/handoff-packages/{name}/{version}",
        lambda c: f"/v1/projects/{c['project']}/handoff-packages/{c['handoff']}",
        VIEWERS,
        prepare=_handoff,
    ),
    Case(
        "GET",
        "/v1/projects/{project}/handoff-packages/{name}/{version}/download",
        lambda c: f"/v1/projects/{c['project']}/handoff-packages/{c['handoff']}/download",
        VIEWERS,
        prepare=_handoff,
    ),
    Case("GET", "/v1/audit", lambda c: f"/v1/audit?project={c['project']}", VIEWERS),
    Case("GET", "/v1/audit/verify", lambda c: "/v1/audit/verify", ADMIN, project_scoped=False),
    Case("GET", "/v1/audit/checkpoint", lambda c: "/v1/audit/checkpoint", VIEWERS, project_scoped=False),
    Case(
        "GET",
        "/v1/audit/proofs/inclusion",
        lambda c: "/v1/audit/proofs/inclusion?index=0",
        VIEWERS,
        project_scoped=False,
    ),
    Case(
        "GET",
        "/v1/audit/proofs/consistency",
        lambda c: "/v1/audit/proofs/consistency?from=1",
        VIEWERS,
        project_scoped=False,
    ),
    Case("GET", "/v1/signing-key", lambda c: "/v1/signing-key", ALL, project_scoped=False),
    Case("POST", "/v1/tokens", lambda c: "/v1/tokens", ALL, project_scoped=False, body=lambda c: {"label": "m"}),
    Case("GET", "/v1/tokens", lambda c: "/v1/tokens", ALL, project_scoped=False),
    # another principal's token: invisible to everyone but its owner and global admins
    Case(
        "POST",
        "/v1/tokens/{token_id}/revoke",
        lambda c: f"/v1/tokens/{c['token']}/revoke",
        frozenset(),
        project_scoped=False,
    ),
]


def _id(case: Case) -> str:
    return f"{case.method} {case.route}"


@pytest.fixture(scope="session")
def ctx(stack: AppState, _clients: TestClient) -> dict[str, str]:
    """One project per stack with a record of every kind; the POST cases are idempotent re-posts."""
    world = World(stack, _clients)
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {}})
    record = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0")).json()
    world.admin.post(f"/v1/projects/{project}/prompt-sets", json=prompt_set_body())
    demonstrations = world.admin.post(f"/v1/projects/{project}/demonstration-sets", json=demonstration_set_body())
    assert demonstrations.status_code == 201, demonstrations.text
    batch = world.admin.post(f"/v1/projects/{project}/annotation-batches", json=batch_body(agreeing_items(6))).json()
    dataset = {"name": "prefs", "batches": [{"id": batch["id"]}], "spec": {}}
    created = world.admin.post(f"/v1/projects/{project}/preference-datasets", json=dataset)
    assert created.status_code == 201
    dataset_id = created.json()["id"]
    waiver = {"name": "waive", "rule": "qc_gate_blocked", "covers": [{"id": batch["id"]}]}
    world.admin.post(f"/v1/projects/{project}/waivers", json={**waiver, "spec": {"reason": "set up for access tests"}})
    return {
        "project": project,
        "record": record["id"],
        "new_project": f"{project}-x",
        "blob": _blob_in(world, project),
        **_upload_in(world, project),
        "batch": batch["id"],
        "prompt-sets": "core-prompts",
        "annotation-batches": batch["name"],
        "demonstration-sets": "written",
        "preference-datasets": "prefs",
        "waivers": "waive",
        "token": world.principal().get("/v1/tokens").json()["items"][0]["id"],
        **_model_side(world, project, dataset_id),
    }


def _model_side(world: World, project: str, dataset_id: str) -> dict[str, str]:
    files = []
    # a folder a run can start from: config, weights and a tokenizer
    for path in ("config.json", "model.safetensors", "tokenizer.json"):
        data = f"matrix {path}".encode()
        blob = world.admin.post("/v1/blobs", content=data).json()
        files.append({"path": path, "digest": blob["digest"], "size": len(data)})
    url = f"/v1/projects/{project}"
    base = world.admin.post(f"{url}/base-models", json={"name": "b", "spec": {"files": files}}).json()
    reward = world.admin.post(
        f"{url}/reward-checkpoints",
        json={
            "name": "r",
            "datasets": [{"id": dataset_id}],
            "base_model": {"id": base["id"]},
            "spec": {"files": files},
        },
    ).json()
    policy = world.admin.post(
        f"{url}/policy-checkpoints",
        json={
            "name": "p",
            "algorithm": "rloo",
            "reward_checkpoint": {"id": reward["id"]},
            "reference_model": {"id": base["id"]},
            "spec": {"files": files},
        },
    ).json()
    evals = {
        kind: _evaluation(world, project, policy["id"], kind, f"e-{kind}")["id"]
        for kind in ("human_preference", "adversarial")
    }
    world.admin.post(f"{url}/evaluations", json={"name": "e", "target": {"id": policy["id"]}, "spec": {"type": "kl"}})
    world.admin.post(
        f"{url}/deployments",
        json={"name": "d", "policy_checkpoint": {"id": policy["id"]}, "spec": {"justification": "j"}},
    )
    run = world.admin.post(f"{url}/runs", json=_run_body({"dataset": dataset_id, "base": base["id"]})).json()
    campaign = _campaign(world, project, {"policy": policy["id"], "base": base["id"]})
    return {
        **campaign,
        "run": run["id"],
        "files": files,  # type: ignore[dict-item]
        "dataset": dataset_id,
        "base": base["id"],
        "reward": reward["id"],
        "policy": policy["id"],
        "eval_hp": evals["human_preference"],
        "eval_adv": evals["adversarial"],
        "base-models": "b",
        "reward-checkpoints": "r",
        "policy-checkpoints": "p",
        "evaluations": "e",
        "deployments": "d",
    }


def _campaign_body(ctx: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "c",
        "checkpoints": [{"id": ctx["policy"]}],
        "reference": {"id": ctx["base"]},
        "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
        "spec": {"responses_blob": ctx["campaign_responses"]},
    }


def _campaign(world: World, project: str, ctx: dict[str, str]) -> dict[str, str]:
    """A campaign of series `p` against its reference, and people's judgments of its tasks."""
    rows = [{"prompt_id": f"q{i}", "model": m, "response": f"{m[:8]} on q{i}"} for i in range(2) for m in ctx.values()]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    responses = world.admin.post("/v1/blobs", content=data).json()["digest"]
    url = f"/v1/projects/{project}"
    campaign = world.admin.post(
        f"{url}/evaluation-campaigns", json=_campaign_body({**ctx, "campaign_responses": responses})
    )
    assert campaign.status_code == 201, campaign.text
    tasks = world.admin.get(f"{url}/evaluation-campaigns/c/1/tasks").text.splitlines()
    evaluator = world.member(project, "annotator").principal
    judgments = [{"task_id": json.loads(t)["task_id"], "evaluator": evaluator, "choice": "a"} for t in tasks]
    digest = world.admin.post("/v1/blobs", content="".join(json.dumps(j) + "\n" for j in judgments).encode())
    body = {"name": "panel", "campaign": {"id": campaign.json()["id"]}, "spec": {"type": "human_preference"}}
    body["spec"]["evidence_blob"] = digest.json()["digest"]
    judged = world.admin.post(f"{url}/evaluations", json=body)
    assert judged.status_code == 201, judged.text
    return {"campaign_responses": responses, "evaluation-campaigns": "c"}


def _evaluation(world: World, project: str, target: str, kind: str, name: str) -> dict[str, Any]:
    """An evaluation whose evidence meets its type's rules, judged by a member who trained nothing."""
    evidence = world.admin.post("/v1/blobs", content=evaluation_results(f"{project} {name}")).json()["digest"]
    evaluator = world.member(project, "annotator").principal
    body = evaluation_body(target, kind, name, evidence=evidence, evaluator=evaluator)
    response = world.admin.post(f"/v1/projects/{project}/evaluations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _upload_in(world: World, project: str) -> dict[str, str]:
    """A large-upload session opened by the global admin, for a blob nobody has stored."""
    digest = "sha256:" + hashlib.sha256(f"upload of {project}".encode()).hexdigest()
    session = world.admin.post("/v1/blobs/uploads", json={"digest": digest, "size": 10})
    assert session.status_code == 201, session.text
    return {"upload_digest": digest, "upload": session.json()["upload_id"]}


def _blob_in(world: World, project: str) -> str:
    """A blob referenced by nothing yet: visible only to its uploader and global admins."""
    import hashlib

    data = f"blob of {project}".encode()
    response = world.admin.post("/v1/blobs", content=data)
    assert response.status_code in (200, 201), response.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _send(api: Api, case: Case, ctx: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {}
    if case.body is not None:
        kwargs["json"] = case.body(ctx)
    if case.raw is not None:
        kwargs["content"] = case.raw
    return api.request(case.method, case.path(ctx), **kwargs)


def demonstration_set_body() -> dict[str, Any]:
    rows = [{"id": f"d{i}", "prompt_id": f"q{i}", "response": f"A careful answer to q{i}."} for i in range(4)]
    return {
        "name": "written",
        "criteria": {"name": "assistant-quality", "version": "1.0.0"},
        "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
        "spec": {"procedure": "Written for the access matrix.", "demonstrations": rows},
    }


# an external run's own routes: only the run's token opens them (tests/runs/test_external_runs_api.py)
RUN_TOKEN_ROUTES = {
    ("GET", "/v1/projects/{project}/runs/{run_id}/inputs"),
    ("GET", "/v1/projects/{project}/runs/{run_id}/inputs/blobs/{digest}"),
    ("POST", "/v1/projects/{project}/runs/{run_id}/blobs"),
    ("POST", "/v1/projects/{project}/runs/{run_id}/checkpoints"),
    ("POST", "/v1/projects/{project}/runs/{run_id}/events"),
    ("POST", "/v1/projects/{project}/runs/{run_id}/finish"),
}


RUN_TOKEN_BODIES: dict[str, Any] = {
    "checkpoints": {"kind": "policy_checkpoint", "spec": {}},
    "events": {"type": "log", "data": {"message": "hello"}},
    "finish": {"status": "succeeded"},
}


@pytest.mark.parametrize("role", [*ROLES, OUTSIDER])
def test_run_token_routes_refuse_every_member_token(world: World, ctx: dict[str, str], role: str) -> None:
    api = world.principal() if role == OUTSIDER else world.member(ctx["project"], role)
    for method, route in sorted(RUN_TOKEN_ROUTES):
        path = route.format(project=ctx["project"], run_id=ctx["run"], digest="sha256:" + "0" * 64)
        body = RUN_TOKEN_BODIES.get(route.rsplit("/", 1)[-1])
        response = api.request(method, path, json=body) if body else api.request(method, path, content=b"x")
        assert response.status_code == 401, (role, method, route, response.text)
        assert response.json()["code"] == "unauthenticated"


def test_every_route_is_in_the_matrix(world: World) -> None:
    """Every operation of the OpenAPI schema (included routers are not flattened into app.routes)."""
    covered = {(c.method, c.route) for c in CASES} | RUN_TOKEN_ROUTES
    paths = world.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    operations = {(method.upper(), path) for path, item in paths.items() for method in item if path not in PUBLIC}
    assert len(operations) > 20
    missing = sorted(operations - covered)
    assert not missing, f"routes without an access case: {missing}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_no_token_is_401(world: World, ctx: dict[str, str], case: Case) -> None:
    if case.prepare is not None:
        ctx = {**ctx, **case.prepare(world, ctx)}
    response = world.client.request(case.method, case.path(ctx))
    assert response.status_code == 401
    if case.method != "HEAD":
        assert response.json()["code"] == "unauthenticated"
    bad = world.client.request(case.method, case.path(ctx), headers={"Authorization": "Bearer rlr_nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize("role", [*ROLES, OUTSIDER])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_role_matrix(world: World, ctx: dict[str, str], case: Case, role: str) -> None:
    api = world.principal() if role == OUTSIDER else world.member(ctx["project"], role)
    if case.prepare is not None:
        ctx = {**ctx, **case.prepare(world, ctx)}
    response = _send(api, case, ctx)
    if role in case.allowed:
        assert response.status_code < 300, (role, response.status_code, response.text)
        return
    if role == OUTSIDER and case.project_scoped:
        expected, code = 404, "not_found"
    elif case.route == "/v1/blobs/{digest}" or case.route.startswith("/v1/blobs/uploads/{upload_id}"):
        # a blob nobody references is invisible, not forbidden, to everyone but its uploader
        expected, code = 404, "not_found"
    elif case.route.startswith("/v1/tokens/{token_id}"):
        expected, code = 404, "not_found"
    else:
        expected, code = 403, "forbidden"
    assert response.status_code == expected, (role, response.text)
    if case.method != "HEAD":
        assert response.json()["code"] == code


def test_global_admin_sees_every_project(world: World, ctx: dict[str, str]) -> None:
    other_admin = world.principal(global_admin=True)
    assert other_admin.get(f"/v1/projects/{ctx['project']}").status_code == 200
    names = [p["name"] for p in other_admin.get("/v1/projects").json()["items"]]
    assert ctx["project"] in names


def test_me_lists_roles(world: World, ctx: dict[str, str]) -> None:
    api = world.member(ctx["project"], "trainer")
    me = api.get("/v1/me").json()
    assert me == {"principal": api.principal, "global_admin": False, "roles": {ctx["project"]: "trainer"}}


def test_member_of_one_project_cannot_see_another(world: World, ctx: dict[str, str]) -> None:
    other = world.project()
    api = world.member(ctx["project"], "admin")
    assert api.get(f"/v1/projects/{other}").status_code == 404
    assert api.get(f"/v1/projects/{other}/criteria").json()["code"] == "not_found"
    assert other not in [p["name"] for p in api.get("/v1/projects").json()["items"]]


def test_blob_becomes_visible_to_viewers_once_a_record_references_it(world: World, ctx: dict[str, str]) -> None:
    """The uploader always sees its blob; a viewer only once a record cites it (test_blob_citation.py)."""
    uploader = world.member(ctx["project"], "annotator")
    response = uploader.post("/v1/blobs", content=b"mine")
    assert response.status_code in (200, 201)
    assert uploader.get(f"/v1/blobs/{response.json()['digest']}").content == b"mine"
    viewer = world.member(ctx["project"], "viewer")
    assert viewer.get(f"/v1/blobs/{response.json()['digest']}").status_code == 404


def test_invalid_role_is_refused(world: World, ctx: dict[str, str]) -> None:
    response = world.admin.put(f"/v1/projects/{ctx['project']}/members/bob", json={"role": "owner"})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
