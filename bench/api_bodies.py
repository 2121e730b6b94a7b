"""What `bench/api.py` sends: the records a project needs before the measured phases (registered once
through the API, as a team would), and the measured registrations and reads, built by functions.

Registrations, every kind a client registers from a small JSON body, new content every time:

  policy       the project's policy series (one series per project: every version locks the same row)
  criteria     a new criteria name at 1.0.0 (semver versions are declared; concurrent clients must not
               race for the next version of one series)
  waiver       a waiver covering the base model, in one series
  evaluation   an evaluation of the policy checkpoint (`target`), in one series
  deployment   the policy checkpoint with its two evaluations, in one series
  prompt set   100 inline prompts under a new name at 1.0.0 (about 20 KB of JSON, parsed into a table)

Reads: by id, by `name/version`, by `name/latest`, list pages of 50 (walking every collection's
cursors), and the upstream lineage of a deployment (evaluations, checkpoint, dataset, batch, criteria,
prompt set, base model)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bench.api_load import HOST, Phase, Req

PROJECT = "bench"
ANNOTATORS = ("ann-1", "ann-2", "ann-3")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def criteria_spec() -> dict[str, Any]:
    return {
        "dimensions": [
            {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 1},
            {"name": "helpfulness", "description": "Answers what was asked.", "rank": 2},
        ],
        "disqualifiers": [{"code": "hallucinated_citation", "description": "Cites a source that does not exist."}],
        "tie_breaking": ["prefer the more concise response"],
        "scope": {"in_scope": ["single-turn questions"], "out_of_scope": ["medical advice"], "special_handling": []},
        "playbook": "# Playbook\nRead both answers fully before choosing.",
        "gold_examples": [{"prompt": "2+2?", "response_a": "4", "response_b": "5", "answer": "a", "why": "arithmetic"}],
    }


def prompts(n: int, tag: str) -> list[dict[str, Any]]:
    """`n` prompts in the default policy's mix (65% usage, 20% synthetic, 15% adversarial)."""
    usage, synthetic = round(n * 0.65), round(n * 0.20)
    sources = ["usage"] * usage + ["synthetic"] * synthetic + ["adversarial"] * (n - usage - synthetic)
    return [
        {
            "id": f"q{i}",
            "text": f"Question {i} of {tag}: how does this work, and why?",
            "source": source,
            "topic": ("general", "code", "science")[i % 3],
            "complexity": ("low", "medium", "high")[i % 3],
            "turns": 1,
            "privacy_reviewed": True,
            "production_validation": False,
        }
        for i, source in enumerate(sources)
    ]


def prompt_set_body(name: str, n: int = 100) -> dict[str, Any]:
    spec = {"sampling_procedure": "Stratified sample of week-46 traffic.", "prompts": prompts(n, name)}
    return {"name": name, "version": "1.0.0", "spec": spec}


def batch_items(n_pairs: int = 10) -> list[dict[str, Any]]:
    rows = []
    for p in range(n_pairs):
        for annotator in ANNOTATORS:
            rows.append(
                {
                    "pair_id": f"p{p}",
                    "prompt_id": f"q{p}",
                    "annotator": annotator,
                    "choice": "a" if p % 3 else "b",
                    "response_a": f"answer A to q{p}",
                    "response_b": f"answer B to q{p}, longer and more detailed",
                    "model_a": "sft-v3",
                    "model_b": "sft-v4",
                    "shown_first": "a",
                    "justification": "clearer",
                    "dimensions": {"accuracy": "a" if p % 3 else "b"},
                    "session_id": f"s-{annotator}",
                    "started_at": "2026-11-16T09:00:00Z",
                    "submitted_at": "2026-11-16T09:02:10Z",
                    "gold": None,
                }
            )
    return rows


@dataclass
class Fixture:
    """The records the measured registrations cite."""

    base_model: str = ""
    checkpoint: str = ""
    evaluations: list[str] = field(default_factory=list)


def _ok(client: HttpClient, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/projects/{PROJECT}/{collection}", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"setup: POST {collection}: HTTP {response.status_code} {response.text[:1000]}")
    return dict(response.json())


def _files(client: HttpClient, tag: str) -> list[dict[str, Any]]:
    out = []
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        data = f"{tag}:{name}".encode() + os.urandom(16)
        response = client.post("/v1/blobs", content=data)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"setup: blob upload: HTTP {response.status_code} {response.text[:500]}")
        out.append({"path": name, "digest": response.json()["digest"], "size": len(data)})
    return out


def set_up(port: int, token: str) -> Fixture:
    """The project and a chain up to a policy checkpoint with two evaluations (not measured)."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=60) as client:
        return set_up_with(client)


class HttpClient(Protocol):
    """What the set-up needs of a client: `httpx.Client`, or an in-process test client."""

    def get(self, url: str) -> Any: ...

    def post(self, url: str, *, json: Any = None, content: bytes | None = None) -> Any: ...


def set_up_with(client: HttpClient) -> Fixture:
    """`set_up` through `client`, which sends a global admin's token (a test client of an app in
    process will do: `bench/profile_requests.py`)."""
    response = client.post("/v1/projects", json={"name": PROJECT, "description": "API bench"})
    if response.status_code != 201:
        raise RuntimeError(f"setup: creating project: HTTP {response.status_code} {response.text[:500]}")
    _ok(client, "policies", {"spec": {}})
    _ok(client, "criteria", {"name": "quality", "version": "1.0.0", "spec": criteria_spec()})
    _ok(client, "prompt-sets", prompt_set_body("core-prompts", 20))
    batch = _ok(
        client,
        "annotation-batches",
        {
            "name": "vendor-a-week-47",
            "criteria": {"name": "quality", "version": "1.0.0"},
            "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
            "spec": {
                "annotator_pool": "vendor-a",
                "tool": "label-studio",
                "collected_from": "2026-11-16",
                "collected_to": "2026-11-20",
                "ai_assisted": False,
                "items": batch_items(),
            },
        },
    )
    dataset = _ok(client, "preference-datasets", {"name": "prefs", "batches": [{"id": batch["id"]}], "spec": {}})
    base = _ok(
        client,
        "base-models",
        {"name": "tiny-base", "spec": {"external": {"hub_id": "org/tiny", "revision": COMMIT}}},
    )
    checkpoint = _ok(
        client,
        "policy-checkpoints",
        {
            "name": "policy",
            "algorithm": "dpo",
            "dataset": {"id": dataset["id"]},
            "reference_model": {"id": base["id"]},
            "spec": {"files": _files(client, "policy"), "step": 100},
        },
    )
    evaluations = [
        _ok(client, "evaluations", {"name": t, "target": {"id": checkpoint["id"]}, "spec": {"type": t}})
        for t in ("human_preference", "adversarial")
    ]
    return Fixture(base["id"], checkpoint["id"], [e["id"] for e in evaluations])


# --------------------------------------------------------------------------------------------------
# measured registrations: kind label -> (collection, body of the n-th request)


def registrations(fx: Fixture, run: str) -> dict[str, tuple[str, Callable[[int], dict[str, Any]]]]:
    """`run` makes names and content unique across the phases of one bench run."""
    return {
        "policy": (
            "policies",
            lambda n: {"spec": {"gold_share_min": (n * 7919 % 1000) / 1000, "max_session_minutes": n}},
        ),
        "criteria": ("criteria", lambda n: {"name": f"c{run}-{n}", "version": "1.0.0", "spec": criteria_spec()}),
        "waiver": (
            "waivers",
            lambda n: {
                "name": "base-ok",
                "rule": "quarantined",
                "covers": [{"id": fx.base_model}],
                "spec": {"reason": f"reviewed by the safety board, ticket {run}-{n}"},
            },
        ),
        "evaluation": (
            "evaluations",
            lambda n: {
                "name": "reward-scores",
                "target": {"id": fx.checkpoint},
                "spec": {"type": "reward_score", "summary": {"mean": n / 1000, "run": run}, "evaluators": ["rm"]},
            },
        ),
        "deployment": (
            "deployments",
            lambda n: {
                "name": "prod",
                "policy_checkpoint": {"id": fx.checkpoint},
                "evaluations": [{"id": e} for e in fx.evaluations],
                "spec": {"justification": f"best human preference, candidate {run}-{n}", "environment": "prod"},
            },
        ),
        "prompt set": ("prompt-sets", lambda n: prompt_set_body(f"p{run}-{n}")),
    }


@dataclass
class Registered:
    """What the measured registrations created: the reads draw from it."""

    ids: list[str] = field(default_factory=list)
    versions: list[tuple[str, str, str]] = field(default_factory=list)  # (collection, name, version)
    series: set[tuple[str, str]] = field(default_factory=set)  # (collection, name)
    deployments: list[str] = field(default_factory=list)
    collections: set[str] = field(default_factory=set)


def registration_phase(
    label: str, collection: str, body: Callable[[int], dict[str, Any]], port: int, headers: bytes, seen: Registered
) -> Phase:
    path = f"/v1/projects/{PROJECT}/{collection}"

    def make(n: int) -> Req:
        return Req("POST", path, json.dumps(body(n)).encode())

    def on_ok(answer: bytes) -> None:
        record = json.loads(answer)
        seen.ids.append(record["id"])
        seen.versions.append((collection, record["name"], record["version"]))
        seen.series.add((collection, record["name"]))
        seen.collections.add(collection)
        if record["kind"] == "deployment":
            seen.deployments.append(record["id"])

    # 201 only: a 200 would mean the content was registered before, and nothing new was written
    return Phase(f"register {label}", "registration", port, make, on_ok, headers, expect=201)


def list_queries(port: int, token: str, collections: set[str]) -> list[str]:
    """The path and query of every page of 50 of each collection, walked once in order."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=60) as client:
        return list_queries_with(client, collections)


def list_queries_with(client: HttpClient, collections: set[str]) -> list[str]:
    """`list_queries` through `client`, which sends the token."""
    queries: list[str] = []
    for collection in sorted(collections):
        cursor: str | None = None
        while True:
            query = f"/v1/projects/{PROJECT}/{collection}?limit=50" + (f"&cursor={cursor}" if cursor else "")
            response = client.get(query)
            if response.status_code != 200:
                raise RuntimeError(f"walking {query}: HTTP {response.status_code} {response.text[:500]}")
            queries.append(query)
            cursor = response.json().get("next_cursor")
            if not cursor:
                break
    return queries


def read_phases(port: int, headers: bytes, seen: Registered, pages: list[str]) -> list[Phase]:
    if not (seen.ids and seen.deployments and pages):
        raise RuntimeError("the registrations created nothing to read")
    pick = random.Random(7).choice
    versions, series = seen.versions, sorted(seen.series)
    base = f"/v1/projects/{PROJECT}"

    def by_version(n: int) -> Req:
        collection, name, version = pick(versions)
        return Req("GET", f"{base}/{collection}/{name}/{version}")

    def latest(n: int) -> Req:
        collection, name = pick(series)
        return Req("GET", f"{base}/{collection}/{name}/latest")

    return [
        Phase("read by id", "read", port, lambda n: Req("GET", f"/v1/records/{pick(seen.ids)}"), None, headers),
        Phase("read name/version", "read", port, by_version, None, headers),
        Phase("read name/latest", "read", port, latest, None, headers),
        Phase("list page of 50", "list", port, lambda n: Req("GET", pick(pages)), None, headers),
        Phase(
            "lineage upstream",
            "read",
            port,
            lambda n: Req("GET", f"/v1/records/{pick(seen.deployments)}/lineage?direction=upstream"),
            None,
            headers,
        ),
    ]


def bare_post_body(size: int) -> bytes:
    """A JSON object of about `size` bytes, shaped like a registration body."""
    body: dict[str, Any] = {"name": "bare", "spec": {"justification": "", "metadata": {"n": 1}}}
    pad = max(0, size - len(json.dumps(body)))
    body["spec"]["justification"] = "x" * pad
    return json.dumps(body).encode()
