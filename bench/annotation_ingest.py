"""Ingest of one large annotation batch through `items_blob` on a running service.

    .venv/bin/python bench/annotation_ingest.py [--items 1000000] [--annotators 5] [--json]

Generates a batch (default 1,000,000 items: 200,000 pairs x 5 annotators) with realistic text lengths
(prompts ~150 characters, responses log-normal around 700), simulated annotators who agree with the
pair's latent preference most of the time, position and length noise, 5% gold pairs and sessions of
about an hour, writes it as Parquet, starts `rlhf-registry serve` on the embedded default in a fresh
data dir, registers criteria and a prompt set, uploads the items as a blob, registers the batch (the
server parses, validates and computes QC), and prints wall times, items per second and the server's
peak resident memory (VmHWM). Targets on this machine: QC and registration under 60 s, server peak
memory under 2 GiB. Only 127.0.0.1 is contacted; the server is stopped on every exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.serving import Served, peak_rss_bytes, serve

TARGET_SECONDS = 60.0
TARGET_PEAK_BYTES = 2 * 1024**3
VOCABULARY = (
    "the a model answer response helpful accurate concise because however therefore example data user "
    "question policy reward preference review safety format tone detail context source citation step "
    "first second finally note result value system training evaluation prompt annotator criteria"
)
WORDS = VOCABULARY.split()


def corpus(rng: np.random.Generator, size: int) -> str:
    words = rng.choice(np.array(WORDS), size=size // 6)
    return " ".join(words.tolist())


def texts(rng: np.random.Generator, base: str, n: int, mean_len: float) -> pa.Array:
    lengths = np.clip(rng.lognormal(np.log(mean_len), 0.5, n).astype(np.int64), 20, len(base) // 4)
    starts = rng.integers(0, len(base) - lengths.max(), n)
    return pa.array(
        [f"{i}: " + base[s : s + length] for i, (s, length) in enumerate(zip(starts, lengths, strict=True))]
    )


def generate(path: Path, n_items: int, n_annotators: int, seed: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Write the items Parquet; return the prompts and the number of pairs."""
    rng = np.random.default_rng(seed)
    n_pairs = n_items // n_annotators
    n_prompts = max(1, n_pairs // 4)
    base = corpus(rng, 4_000_000)
    prompt_text = texts(rng, base, n_prompts, 150)
    sources = rng.choice(["usage", "synthetic", "expert", "adversarial"], n_prompts, p=[0.65, 0.22, 0.06, 0.07])
    prompts = [
        {
            "id": f"q{i}",
            "text": t,
            "source": str(s),
            "topic": f"topic-{i % 40}",
            "complexity": ("low", "medium", "high")[i % 3],
            "turns": 1,
            "privacy_reviewed": True,
            "production_validation": i % 50 == 0,
        }
        for i, (t, s) in enumerate(zip(prompt_text.to_pylist(), sources, strict=True))
    ]
    response_a = texts(rng, base, n_pairs, 700)
    response_b = texts(rng, base, n_pairs, 700)
    latent = rng.random(n_pairs) < 0.5  # True: a is better
    skill = rng.uniform(0.88, 0.97, n_annotators)
    start = np.datetime64("2026-11-16T08:00:00", "us")
    writer: pq.ParquetWriter | None = None
    chunk_pairs = 20_000
    for lo in range(0, n_pairs, chunk_pairs):
        hi = min(n_pairs, lo + chunk_pairs)
        pairs = np.repeat(np.arange(lo, hi), n_annotators)
        annot = np.tile(np.arange(n_annotators), hi - lo)
        agrees = rng.random(pairs.size) < skill[annot]
        tie = rng.random(pairs.size) < 0.06
        a_wins = np.where(agrees, latent[pairs], ~latent[pairs])
        choice = np.where(tie, "tie", np.where(a_wins, "a", "b"))
        gold_pair = pairs % 20 == 0
        gold = np.where(gold_pair, np.where(latent[pairs], "a", "b"), None)
        position = np.arange(pairs.size) // n_annotators
        seconds = (position % 1500) * 2 + annot * 7  # each session ~50 minutes
        started = start + (pairs * 0 + (lo // chunk_pairs) * 86_400 + seconds).astype("timedelta64[s]")
        table = pa.table(
            {
                "pair_id": pa.array([f"p{p}" for p in pairs]),
                "prompt_id": pa.array([f"q{p % n_prompts}" for p in pairs]),
                "response_a": response_a.take(pa.array(pairs)),
                "response_b": response_b.take(pa.array(pairs)),
                "model_a": pa.array(np.where(pairs % 2 == 0, "sft-v3", "sft-v4")),
                "model_b": pa.array(np.where(pairs % 2 == 0, "sft-v4", "sft-v3")),
                "shown_first": pa.array(rng.choice(["a", "b"], pairs.size)),
                "annotator": pa.array([f"ann-{a}" for a in annot]),
                "choice": pa.array(choice),
                "session_id": pa.array(
                    [f"s-{a}-{lo // chunk_pairs}-{p // 1500}" for a, p in zip(annot, position, strict=True)]
                ),
                "started_at": pa.array(started, pa.timestamp("us", tz="UTC")),
                "submitted_at": pa.array(started + np.timedelta64(40, "s"), pa.timestamp("us", tz="UTC")),
                "gold": pa.array(gold.tolist(), pa.string()),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return prompts, n_pairs


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        items_path = Path(tmp) / "items.parquet"
        t0 = time.perf_counter()
        prompts, n_pairs = generate(items_path, args.items, args.annotators)
        generated_s = time.perf_counter() - t0
        with serve(Path(tmp) / "data") as served:
            return ingest(served, items_path, prompts, n_pairs, args, generated_s)


def ingest(
    served: Served,
    items_path: Path,
    prompts: list[dict[str, Any]],
    n_pairs: int,
    args: argparse.Namespace,
    generated_s: float,
) -> dict[str, Any]:
    client = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}, timeout=600)
    client.post("/v1/projects", json={"name": "bench"}).raise_for_status()
    criteria = {
        "name": "quality",
        "version": "1.0.0",
        "spec": {"dimensions": [{"name": "accuracy", "description": "facts", "rank": 1}]},
    }
    client.post("/v1/projects/bench/criteria", json=criteria).raise_for_status()
    prompts_blob = client.post("/v1/blobs", content="".join(json.dumps(p) + "\n" for p in prompts).encode())
    prompts_blob.raise_for_status()
    client.post(
        "/v1/projects/bench/prompt-sets",
        json={
            "name": "prompts",
            "version": "1.0.0",
            "spec": {"sampling_procedure": "generated", "prompts_blob": prompts_blob.json()["digest"]},
        },
    ).raise_for_status()

    t0 = time.perf_counter()
    with items_path.open("rb") as fh:
        uploaded = client.post("/v1/blobs", content=iter(lambda: fh.read(1 << 20), b""))
    uploaded.raise_for_status()
    upload_s = time.perf_counter() - t0
    before = peak_rss_bytes(served.pid)
    t0 = time.perf_counter()
    response = client.post(
        "/v1/projects/bench/annotation-batches",
        json={
            "name": "big",
            "criteria": {"name": "quality", "version": "1.0.0"},
            "prompt_set": {"name": "prompts", "version": "1.0.0"},
            "spec": {
                "annotator_pool": "sim",
                "tool": "bench",
                "collected_from": "2026-11-16",
                "collected_to": "2026-11-26",
                "items_blob": uploaded.json()["digest"],
            },
        },
    )
    register_s = time.perf_counter() - t0
    if response.status_code != 201:
        raise SystemExit(f"registration failed: {response.status_code} {response.text[:2000]}")
    qc = response.json()["derived"]["qc"]
    return {
        "items": args.items,
        "pairs": n_pairs,
        "annotators": args.annotators,
        "parquet_bytes": items_path.stat().st_size,
        "generate_s": round(generated_s, 2),
        "upload_s": round(upload_s, 2),
        "register_s": round(register_s, 2),
        "items_per_s": round(args.items / register_s),
        "server_peak_rss_mib_before": round(before / 2**20),
        "server_peak_rss_mib": round(peak_rss_bytes(served.pid) / 2**20),
        "kappa_mean": qc["cohen_kappa"]["mean"],
        "alpha": qc["krippendorff_alpha"],
        "gate": qc["gate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:28} {value}")
    ok_time = result["register_s"] < TARGET_SECONDS
    ok_mem = result["server_peak_rss_mib"] * 2**20 < TARGET_PEAK_BYTES
    verdict = "met" if ok_time else "MISSED"
    print(f"target: registration (parse, validate, QC, store) < {TARGET_SECONDS:.0f} s: {verdict}")
    print(f"target: server peak memory < 2 GiB: {'met' if ok_mem else 'MISSED'}")


if __name__ == "__main__":
    main()
