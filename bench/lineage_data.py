"""Synthetic registry contents for `bench/lineage.py`: rows shaped like the ones the record pipeline
(app.records.service.register) writes, generated without going through it.

Each project lives one simulated year. A timeline of actions runs in time order, and every action picks
its parents among the records that exist at that moment, the way a team works:

  criteria        two names, each a series of semver versions across 2-3 MAJORs (older MAJORs go `stale`)
  prompt_set      ~20 names, 1-4 semver versions each
  policy          one `default` version; base_model: 6 names, some with a second revision
  annotation_batch  criteria (the version current then) + prompt set; a few re-deliveries (version 2)
  preference_dataset  a window of the 5-30 latest usable batches of one criteria name and MAJOR
  reward_checkpoint   1-3 recent datasets of one criteria line + a base model, with two evaluations
  policy_checkpoint   runs of 10-50 steps (rloo/ppo/grpo against a reward checkpoint, or dpo on a dataset),
                  reference model: a base model, now and then the last checkpoint of an earlier run
  evaluation      reward_score and kl on every step, human_preference and adversarial on some
  deployment      half the runs: a late checkpoint + its human_preference and adversarial evaluations;
                  events: most approved, some rejected
  revocation      a batch in the first project, a dataset in the second, each with a deployment
                  downstream (approved ones get flagged); nothing picks a quarantined parent afterwards
                  (the pipeline would refuse it)

The total is filled to the requested count with more evaluations of policy checkpoints. Digests are
sha256 over sorted-key compact JSON of the same content the pipeline hashes; the files of checkpoints and
base models are listed in `spec` and `blobs` (no blob or record_blob rows: traces never read them).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

DAY = 86400.0
SPAN = 365 * DAY
ON_POLICY = ("rloo", "ppo", "grpo")

CRITERIA_PLANS: dict[str, list[tuple[str, float, str | None]]] = {
    "helpfulness": [
        ("1.0.0", 0.0, None),
        ("1.1.0", 0.08, "minor"),
        ("1.2.0", 0.18, "minor"),
        ("2.0.0", 0.30, "major"),
        ("2.0.1", 0.40, "patch"),
        ("2.1.0", 0.50, "minor"),
        ("3.0.0", 0.75, "major"),
        ("3.1.0", 0.88, "minor"),
    ],
    "harmlessness": [
        ("1.0.0", 0.0, None),
        ("1.1.0", 0.25, "minor"),
        ("2.0.0", 0.60, "major"),
        ("2.0.1", 0.80, "patch"),
    ],
}
CRITERIA_WEIGHTS = {"helpfulness": 0.75, "harmlessness": 0.25}
PROMPT_TOPICS = [
    "coding",
    "math",
    "writing",
    "summarisation",
    "extraction",
    "reasoning",
    "chit-chat",
    "medical",
    "legal",
    "finance",
    "travel",
    "education",
    "multilingual",
    "tool-use",
    "long-context",
    "roleplay",
    "safety-redteam",
    "privacy",
    "science",
    "customer-support",
]
BASE_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "qwen2.5-32b", "mistral-7b", "gemma-2-9b"]
POOLS = ["vendor-a", "vendor-b", "vendor-c", "inhouse"]
TOOLS = ["label-studio", "argilla", "internal"]


def semver_key(version: str) -> str:
    return ".".join(f"{int(part):06d}" for part in version.split("."))


def integer_key(version: int) -> str:
    return f"{version:012d}"


def digest_of(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def uuid7_at(ms: int, rng: random.Random) -> str:
    """A version 7 UUID for a given millisecond (app.core.ids.uuid7 with a chosen clock and random source)."""
    rand = rng.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(eq=False)
class Rec:
    """What the generator remembers of a record it wrote."""

    id: str
    kind: str
    name: str
    version: str
    t: float
    spec: dict[str, Any]
    line: tuple[str, int] | None = None  # criteria (name, MAJOR) the record follows
    base: Rec | None = None
    evaluations: dict[str, Rec] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rows:
    """Everything to insert, as dicts keyed by column name, plus what the benchmark samples from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)


def _files(rng: random.Random, big: bool) -> list[dict[str, Any]]:
    shards = 4 if big else 1
    names = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
    names += [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    return [
        {
            "path": n,
            "digest": f"sha256:{rng.getrandbits(256):064x}",
            "size": rng.randint(10**9, 5 * 10**9) if n.endswith("safetensors") else rng.randint(200, 9_000_000),
        }
        for n in names
    ]


def _folder_figures(files: list[dict[str, Any]]) -> dict[str, Any]:
    hasher = hashlib.sha256()
    for entry in sorted(files, key=lambda f: str(f["path"])):
        hasher.update(bytes.fromhex(entry["digest"].removeprefix("sha256:")))
    return {
        "root_digest": "sha256:" + hasher.hexdigest(),
        "file_count": len(files),
        "total_size": sum(f["size"] for f in files),
        "hashing": "openssf-model-signing-v1 (files, sha256)",
    }


class ProjectGenerator:
    def __init__(
        self, rows: Rows, index: int, project_id: str, project_name: str, budget: int, seed: int, start: float
    ) -> None:
        self.rows = rows
        self.index = index
        self.project_id = project_id
        self.project_name = project_name
        self.budget = budget
        self.rng = random.Random(seed)
        self.start = start
        self.count = 0
        self.versions: dict[tuple[str, str], int] = defaultdict(int)
        self.series_t: dict[tuple[str, str], float] = {}
        self.children: dict[str, list[str]] = defaultdict(list)
        self.kind_of: dict[str, str] = {}
        self.quarantined: set[str] = set()
        self.criteria: dict[str, Rec] = {}  # current version per name
        self.latest_major: dict[str, int] = {}
        self.prompt_sets: dict[str, Rec] = {}
        self.base_models: dict[str, Rec] = {}
        self.policy: Rec | None = None
        self.batches: list[Rec] = []
        self.batches_by_line: dict[tuple[str, int], list[Rec]] = defaultdict(list)
        self.datasets: list[Rec] = []
        self.datasets_by_line: dict[tuple[str, int], list[Rec]] = defaultdict(list)
        self.rms: list[Rec] = []
        self.finished_runs: list[tuple[float, Rec]] = []  # (end time, last checkpoint)
        self.checkpoints: list[Rec] = []
        self.runs = 0
        self.queue: list[tuple[float, int, Callable[[float], None]]] = []

    # -- writing ---------------------------------------------------------------------------------------

    def add(
        self,
        kind: str,
        name: str,
        t: float,
        parents: list[tuple[Rec, str]],
        spec: dict[str, Any],
        derived: dict[str, Any],
        *,
        version: str | None = None,
        actor: str = "trainer-1",
        blobs: list[dict[str, Any]] | None = None,
        line: tuple[str, int] | None = None,
    ) -> Rec:
        rng = self.rng
        if version is None:
            self.versions[(kind, name)] += 1
            number = self.versions[(kind, name)]
            version, key = str(number), integer_key(number)
        else:
            key = semver_key(version)
        t = max(t, self.series_t.get((kind, name), 0.0) + 1.0, *(p.t + 1.0 for p, _ in parents))
        self.series_t[(kind, name)] = t
        rid = uuid7_at(int(t * 1000), rng)
        refs = [{"id": p.id, "kind": p.kind, "role": role} for p, role in parents]
        blobs = blobs or []
        content = {"kind": kind, "name": name, "parents": refs, "spec": spec, "blobs": blobs}
        content_digest = digest_of(content)
        digest = digest_of({**content, "project": self.project_name, "version": version, "derived": derived})
        self.rows.records.append(
            {
                "id": rid,
                "kind": kind,
                "project_id": self.project_id,
                "name": name,
                "version": version,
                "version_key": key,
                "digest": digest,
                "content_digest": content_digest,
                "created_at": datetime.fromtimestamp(t, UTC),
                "created_by": actor,
                "parents": refs,
                "spec": spec,
                "blobs": blobs,
                "derived": derived,
            }
        )
        for parent_id, role in dict.fromkeys((p.id, role) for p, role in parents):
            self.rows.edges.append({"child_id": rid, "parent_id": parent_id, "role": role})
            self.children[parent_id].append(rid)
        self.rows.kinds[kind] += 1
        self.count += 1
        self.kind_of[rid] = kind
        return Rec(rid, kind, name, version, t, spec, line=line)

    def event(self, record: Rec, t: float, type_: str, data: dict[str, Any], actor: str) -> None:
        self.rows.events.append(
            {
                "id": uuid7_at(int(t * 1000), self.rng),
                "record_id": record.id,
                "type": type_,
                "data": data,
                "actor": actor,
                "created_at": datetime.fromtimestamp(t, UTC),
            }
        )

    def at(self, fraction: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self.queue, (self.start + fraction * SPAN, len(self.queue) + len(self.rows.records), action))

    def usable(self, records: list[Rec]) -> list[Rec]:
        return [r for r in records if r.id not in self.quarantined]

    # -- the plan --------------------------------------------------------------------------------------

    def generate(self) -> None:
        rng = self.rng
        n_batches = max(20, round(self.budget * 0.06))
        n_datasets = max(3, n_batches // 8)
        n_rms = max(2, n_datasets // 2)
        fixed = 1 + sum(len(p) for p in CRITERIA_PLANS.values()) + 50 + 9
        per_run = 30 * 3.2 + 1.3
        n_runs = max(1, int((self.budget - fixed - n_batches - n_datasets - 3 * n_rms) * 0.93 / per_run))

        self.at(0.0, self.add_policy)
        for name, plan in CRITERIA_PLANS.items():
            for version, fraction, level in plan:
                jitter = 0.0 if fraction == 0.0 else rng.uniform(-0.03, 0.03)
                self.at(fraction + jitter, partial(self.add_criteria, name=name, version=version, level=level))
        for topic in PROMPT_TOPICS:
            self.at(rng.uniform(0.0, 0.02), partial(self.add_prompt_set, topic=topic))
            for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                self.at(rng.uniform(0.1, 0.95), partial(self.add_prompt_set, topic=topic))
        for name in BASE_MODELS:
            self.at(rng.uniform(0.0, 0.02), partial(self.add_base_model, name=name))
        for name in rng.sample(BASE_MODELS, 3):
            self.at(rng.uniform(0.4, 0.7), partial(self.add_base_model, name=name))
        for _ in range(n_batches):
            self.at(rng.uniform(0.03, 1.0), self.add_batch)
        for _ in range(n_datasets):
            self.at(rng.uniform(0.08, 1.0), self.add_dataset)
        for _ in range(n_rms):
            self.at(rng.uniform(0.12, 1.0), self.add_reward_checkpoint)
        for _ in range(n_runs):
            self.at(rng.uniform(0.18, 1.0), self.add_run)
        self.at(0.7, self.revoke)
        while self.queue:
            t, _, action = heapq.heappop(self.queue)
            action(t)
        self.fill()
        for (kind, name), last in self.versions.items():
            self.rows.series.append({"project_id": self.project_id, "kind": kind, "name": name, "last_version": last})

    # -- actions ---------------------------------------------------------------------------------------

    def add_policy(self, t: float) -> None:
        spec = {"kappa_target": 0.6, "kappa_floor": 0.4, "deployment_requires": ["human_preference", "adversarial"]}
        self.policy = self.add("policy", "default", t, [], spec, {}, actor="admin")

    def add_criteria(self, t: float, name: str, version: str, level: str | None) -> None:
        major = int(version.split(".")[0])
        dims = ["helpfulness", "honesty", "harmlessness", "concision", "style"][: 2 + major]
        spec = {
            "dimensions": [
                {"name": d, "description": f"How well the response does on {d} (v{version})", "rank": i + 1}
                for i, d in enumerate(dims)
            ],
            "disqualifiers": [{"code": "unsafe", "description": "Gives dangerous instructions"}],
            "tie_breaking": ["prefer the shorter response when otherwise equal"],
            "scope": {"in_scope": ["single-turn chat"], "out_of_scope": [], "special_handling": ["multi-turn"]},
            "playbook": f"# {name} {version}\nRead every response fully before choosing.",
            "metadata": {"owner": "annotation-lead"},
        }
        previous = self.criteria.get(name)
        change: dict[str, Any] | None = None
        if previous is not None:
            change = {"from_version": previous.version, "level": level, "changes": []}
        record = self.add("criteria", name, t, [], spec, {"change": change}, version=version, actor="lead-1")
        record.line = (name, major)
        self.criteria[name] = record
        self.latest_major[name] = max(self.latest_major.get(name, 0), major)

    def add_prompt_set(self, t: float, topic: str) -> None:
        name = f"{topic}-prompts"
        previous = self.prompt_sets.get(name)
        if previous is None:
            version = "1.0.0"
        else:
            major, minor, _ = (int(p) for p in previous.version.split("."))
            version = f"{major + 1}.0.0" if self.rng.random() < 0.2 else f"{major}.{minor + 1}.0"
        n = self.rng.randint(200, 3000)
        spec = {
            "prompts_blob": None,
            "sampling_procedure": f"stratified sample of {topic} traffic, PII-scrubbed",
            "privacy_review": {"reviewed": True, "reviewer": "privacy-1"},
            "production_validation_share": 0.1,
            "metadata": {"topic": topic, "prompts": n},
        }
        derived = {
            "prompts": n,
            "mix": {"usage": 0.65, "synthetic": 0.22, "edge": 0.13},
            "length_buckets": {"short": n // 3, "medium": n // 3, "long": n - 2 * (n // 3)},
            "warnings": [],
        }
        self.prompt_sets[name] = self.add("prompt_set", name, t, [], spec, derived, version=version, actor="lead-1")

    def add_base_model(self, t: float, name: str) -> None:
        files = _files(self.rng, "70b" in name or "32b" in name)
        spec = {"files": files, "external": {"hub_id": f"org/{name}", "revision": f"{self.rng.getrandbits(160):040x}"}}
        blobs = [{"path": f"files/{f['path']}", "digest": f["digest"], "size": f["size"]} for f in files]
        derived = {**_folder_figures(files), "external": spec["external"]}
        self.base_models[name] = self.add("base_model", name, t, [], spec, derived, blobs=blobs, actor="trainer-1")

    def add_batch(self, t: float) -> None:
        rng = self.rng
        crit_name = rng.choices(list(CRITERIA_WEIGHTS), weights=list(CRITERIA_WEIGHTS.values()))[0]
        criteria = self.criteria[crit_name]
        assert criteria.line is not None
        line = criteria.line
        prompt_set = rng.choice(list(self.prompt_sets.values()))
        pool = rng.choice(POOLS)
        same_line = self.batches_by_line[line]
        if same_line and rng.random() < 0.03:
            name = rng.choice(same_line[-20:]).name  # a corrected re-delivery: version 2 of that batch
        else:
            name = f"{pool}-{crit_name}-{len(self.batches) + 1:05d}"
        items = rng.randint(300, 4000)
        kappa = round(rng.uniform(0.35, 0.85), 4)
        gate = "block" if kappa < 0.4 else "warn" if kappa < 0.6 else "pass"
        day = datetime.fromtimestamp(t, UTC).date().isoformat()
        spec = {
            "metadata": {
                "collection_start": day,
                "collection_end": day,
                "annotator_pool": pool,
                "tool": rng.choice(TOOLS),
                "criteria_version": criteria.version,
                "prompt_set_version": prompt_set.version,
                "ai_assisted": rng.random() < 0.2,
            },
            "items_blob": f"sha256:{rng.getrandbits(256):064x}",
        }
        derived = {
            "criteria": {"name": criteria.name, "version": criteria.version},
            "prompt_set": {"name": prompt_set.name, "version": prompt_set.version},
            "items": items,
            "prompts_covered": items // 3,
            "qc": {
                "kappa_mean": kappa,
                "alpha": round(kappa - 0.02, 4),
                "gold_accuracy": round(rng.uniform(0.7, 0.98), 4),
                "position_bias": {"share_first": round(rng.uniform(0.45, 0.58), 4), "p_value": 0.2},
                "length_bias": round(rng.uniform(0.45, 0.65), 4),
                "tie_rate": round(rng.uniform(0.02, 0.15), 4),
                "high_disagreement_share": round(rng.uniform(0.05, 0.2), 4),
                "sessions_over_limit": rng.randint(0, 3),
                "gate": gate,
                "gate_reasons": [] if gate == "pass" else [f"kappa {kappa} below target"],
                "policy_version": 1,
            },
        }
        blobs = [{"path": "items", "digest": spec["items_blob"], "size": items * 900}]
        record = self.add(
            "annotation_batch",
            name,
            t,
            [(criteria, "criteria"), (prompt_set, "prompt_set")],
            spec,
            derived,
            blobs=blobs,
            actor=f"annotator-{rng.randint(1, 12)}",
            line=line,
        )
        record.extra["gate"] = gate
        self.batches.append(record)
        same_line.append(record)
        self.rows.batches.append(record.id)

    def _pick_line(self, pool: list[Rec]) -> tuple[str, int] | None:
        recent = [r for r in pool[-40:] if r.line is not None]
        return self.rng.choice(recent).line if recent else None

    def add_dataset(self, t: float) -> None:
        rng = self.rng
        line = self._pick_line(self.usable(self.batches))
        if line is None:
            return
        usable = [b for b in self.usable(self.batches_by_line[line]) if b.extra["gate"] != "block"]
        if not usable:
            return
        end = len(usable) - rng.randint(0, min(5, len(usable) - 1))
        window = usable[max(0, end - rng.randint(5, 30)) : end]
        versions = sorted({b.spec["metadata"]["criteria_version"] for b in window})
        pairs = sum(rng.randint(300, 4000) for _ in window) // 3
        validation = pairs // 8
        spec = {"validation_share": 0.12, "drop_ties": True, "exclude_high_disagreement": True, "seed": 17}
        digest = f"sha256:{rng.getrandbits(256):064x}"
        derived = {
            "format": "trl-preference",
            "columns": ["prompt", "chosen", "rejected", "prompt_id", "split"],
            "counts": {"pairs_in": pairs, "pairs_out": pairs, "train": pairs - validation, "validation": validation},
            "criteria": {"name": line[0], "versions": versions},
            "warnings": [
                f"batch {b.name} v{b.version} entered with QC gate warn" for b in window if b.extra["gate"] == "warn"
            ],
            "waivers": [],
            "files": [{"path": "dataset.parquet", "digest": digest, "size": pairs * 2000}],
        }
        name = f"{line[0]}-v{line[1]}-prefs"
        record = self.add(
            "preference_dataset", name, t, [(b, "batches") for b in window], spec, derived, actor="lead-1", line=line
        )
        self.datasets.append(record)
        self.datasets_by_line[line].append(record)

    def add_reward_checkpoint(self, t: float) -> None:
        rng = self.rng
        line = self._pick_line(self.usable(self.datasets))
        if line is None:
            return
        recent = self.usable(self.datasets_by_line[line])[-5:]
        datasets = rng.sample(recent, min(len(recent), rng.randint(1, 3)))
        base = rng.choice(list(self.base_models.values()))
        files = _files(rng, False)
        spec = {
            "files": files,
            "hyperparameters": {"learning_rate": 1e-5, "epochs": 1, "loss": "bradley-terry"},
            "run_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "metrics": {"validation_accuracy": round(rng.uniform(0.62, 0.78), 4)},
        }
        derived = {
            **_folder_figures(files),
            "criteria": {"name": line[0], "major": line[1]},
            "metrics": spec["metrics"],
        }
        blobs = [{"path": f"files/{f['path']}", "digest": f["digest"], "size": f["size"]} for f in files]
        name = f"rm-{base.name}-{line[0]}"
        parents = [*((d, "datasets") for d in datasets), (base, "base_model")]
        record = self.add("reward_checkpoint", name, t, parents, spec, derived, blobs=blobs, line=line)
        record.base = base
        self.rms.append(record)
        for type_ in ("reward_score", "length_reward_correlation"):
            self.evaluate(record, type_, record.t + 3600)

    def evaluate(self, target: Rec, type_: str, t: float, series: str | None = None) -> Rec:
        spec = {
            "type": type_,
            "summary": {"score": round(self.rng.uniform(0, 1), 4), "n": self.rng.randint(100, 2000)},
            "evaluators": ["human-panel"] if type_.startswith("human") else [],
            "metadata": {"step": target.spec.get("step")},
        }
        derived = {"type": type_, "target": {"kind": target.kind, "name": target.name, "version": target.version}}
        name = f"{series or target.name}-{type_}"
        record = self.add("evaluation", name, t, [(target, "target")], spec, derived, actor="trainer-1")
        target.evaluations[type_] = record
        return record

    def add_run(self, t: float) -> None:
        rng = self.rng
        rms = self.usable(self.rms)[-6:]
        algorithm = rng.choice(ON_POLICY) if rng.random() < 0.8 or not self.datasets else "dpo"
        if algorithm != "dpo" and not rms:
            return
        self.runs += 1
        reward = rng.choice(rms) if algorithm != "dpo" else None
        dataset = rng.choice(self.usable(self.datasets)[-8:]) if algorithm == "dpo" else None
        if reward is not None:
            reference: Rec = reward.base or rng.choice(list(self.base_models.values()))
        else:
            reference = rng.choice(list(self.base_models.values()))
        earlier = [c for end, c in self.finished_runs if end < t and c.id not in self.quarantined]
        if earlier and rng.random() < 0.1:
            reference = rng.choice(earlier[-10:])  # continue from an earlier run's final checkpoint
        short = (reward.base if reward and reward.base else reference).name.split("-")[0]
        name = f"{algorithm}-{short}-run{self.runs:04d}"
        steps = rng.randint(10, 50)
        every = rng.choice([50, 100, 200])
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        beta = round(rng.uniform(0.01, 0.1), 3)
        parents_common = [(reference, "reference_model")]
        if reward is not None:
            parents_common.insert(0, (reward, "reward_checkpoint"))
        if dataset is not None:
            parents_common.insert(0, (dataset, "dataset"))
        trained_on = reward or dataset
        assert trained_on is not None
        checkpoints = []
        for step in range(1, steps + 1):
            files = _files(rng, False)
            spec = {
                "algorithm": algorithm,
                "kl_coefficient": beta,
                "step": step * every,
                "files": files,
                "hyperparameters": {"learning_rate": 1e-6, "beta": beta, "batch_size": 64},
                "run_id": run_id,
                "metrics": {"reward_mean": round(rng.uniform(-1, 2), 4), "kl": round(rng.uniform(0, 8), 4)},
            }
            derived = {
                **_folder_figures(files),
                "algorithm": algorithm,
                "kl_coefficient": beta,
                "step": step * every,
                "metrics": spec["metrics"],
            }
            blobs = [{"path": f"files/{f['path']}", "digest": f["digest"], "size": f["size"]} for f in files]
            ckpt = self.add(
                "policy_checkpoint",
                name,
                t + step * 1800,
                list(parents_common),
                spec,
                derived,
                blobs=blobs,
                line=trained_on.line,
            )
            checkpoints.append(ckpt)
            self.evaluate(ckpt, "reward_score", ckpt.t + 300, series=name)
            self.evaluate(ckpt, "kl", ckpt.t + 300, series=name)
            if rng.random() < 0.1:
                self.evaluate(ckpt, "human_preference", ckpt.t + DAY, series=name)
                self.evaluate(ckpt, "adversarial", ckpt.t + DAY, series=name)
        self.checkpoints.extend(checkpoints)
        self.finished_runs.append((checkpoints[-1].t, checkpoints[-1]))
        if rng.random() < 0.5:
            self.deploy(rng.choice(checkpoints[steps // 2 :]))
            if rng.random() < 0.2:
                self.deploy(rng.choice(checkpoints[steps // 2 :]))

    def deploy(self, checkpoint: Rec) -> None:
        rng = self.rng
        if checkpoint.id in self.quarantined:
            return  # the pipeline refuses a quarantined parent
        series = checkpoint.name
        for type_ in ("human_preference", "adversarial"):
            if type_ not in checkpoint.evaluations:
                self.evaluate(checkpoint, type_, checkpoint.t + DAY, series=series)
        evals = [checkpoint.evaluations["human_preference"], checkpoint.evaluations["adversarial"]]
        environment = rng.choice(["staging", "production"])
        spec = {
            "justification": f"best human preference win rate of {checkpoint.name} (step {checkpoint.spec['step']})",
            "environment": environment,
            "metadata": {},
        }
        derived = {
            "policy_checkpoint": {"name": checkpoint.name, "version": checkpoint.version},
            "evidence_types": ["adversarial", "human_preference"],
        }
        parents = [(checkpoint, "policy_checkpoint"), *((e, "evaluations") for e in evals)]
        deployment = self.add(
            "deployment", f"assistant-{environment}", checkpoint.t + 2 * DAY, parents, spec, derived, actor="trainer-2"
        )
        self.rows.deployments.append(deployment.id)
        roll = rng.random()
        if roll < 0.65:
            line = checkpoint.line
            stale = bool(line and self.latest_major.get(line[0], 0) > line[1])
            data = {
                "note": "evidence reviewed",
                "policy_version": 1,
                "evidence": ["adversarial", "human_preference"],
                "missing_waived": [],
                "waivers": [],
                "checkpoint": checkpoint.id,
                "stale": stale,
            }
            self.event(deployment, deployment.t + DAY, "approved", data, "approver-1")
        elif roll < 0.75:
            self.event(
                deployment, deployment.t + DAY, "rejected", {"note": "regression", "policy_version": 1}, "approver-1"
            )

    def downstream(self, record_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [record_id]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def revoke(self, t: float) -> None:
        """One revocation per project among the first two: a consumed batch, then a dataset, each with a
        deployment downstream where there is one (the case a lineage view must flag)."""
        if self.index == 0:
            pool = self.batches
            reason = "fabricated annotations found in a vendor audit"
        elif self.index == 1:
            pool = self.datasets
            reason = "built from a prompt export that leaked validation prompts"
        else:
            return
        candidates = [r for r in pool if self.children.get(r.id) and r.t < t - 30 * DAY][-300:]
        if not candidates:
            return
        deployed = [r for r in candidates if any(self.kind_of[d] == "deployment" for d in self.downstream(r.id))]
        record = self.rng.choice(deployed[-20:] or candidates[-50:])
        self.event(record, t, "revoked", {"reason": reason}, "approver-1")
        self.rows.revoked.append(record.id)
        self.quarantined |= {record.id, *self.downstream(record.id)}

    def fill(self) -> None:
        """Top the project up to its budget with more evaluations of policy checkpoints."""
        types = ("human_rating", "length_reward_correlation", "adversarial", "human_preference")
        while self.count < self.budget and self.checkpoints:
            target = self.rng.choice(self.checkpoints)
            self.evaluate(target, self.rng.choice(types), target.t + self.rng.uniform(0.1, 5) * DAY, series=target.name)


def generate(projects: list[tuple[str, str]], total: int, seed: int, now: float) -> Rows:
    """Rows for `total` records spread evenly over `projects` ((id, name) pairs)."""
    rows = Rows()
    share, rest = divmod(total, len(projects))
    for i, (project_id, name) in enumerate(projects):
        budget = share + (1 if i < rest else 0)
        start = now - SPAN - 30 * DAY + i * 3 * DAY
        ProjectGenerator(rows, i, project_id, name, budget, seed * 1000 + i, start).generate()
    return rows
