"""GPU check: the registry's training overhead against a plain TRL script, on the same data and settings.

On a CUDA machine: builds a small Llama (a real architecture, randomly initialised from a config, with a
byte-level BPE tokenizer trained here on the data: nothing comes from a hub), registers HH-RLHF
harmless-base test pairs (the 500 shipped in `demo/data`, or the full file of 2,312 given with `--data`)
as a prompt set, an annotation batch and a preference dataset in a real `rlhf-registry serve` (embedded
default, one worker), then

- through the registry: a `reward_model` run and a `dpo` run (the worker downloads and verifies the
  inputs, trains with TRL, streams step metrics, uploads and registers the checkpoint);
- plainly: the same TRL trainers on the same train pairs (read from the registered dataset), the same
  model folder and the same settings, in this process.

It prints training samples per second for both and their ratio (target: the registry's overhead at most
5%), and each side's wall time from start to a saved model. Samples per second is TRL's
`train_samples_per_second` (samples over the `train()` call); the registry's end-to-end wall time also
holds downloading, the validation figures it registers and the upload.

    python bench/gpu_check.py [--steps 200] [--batch 16] [--max-length 512] [--json out.json]

`--smoke` runs tiny sizes on CPU, to check the script itself where there is no GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.client import RegistryClient
from app.client.uploads import push_folder
from app.importers import from_hf_preference_jsonl
from bench.serving import serve
from demo.models import LlamaSize, build_llama

# The slice shipped with the demo; `--data` takes the full harmless-base test file (2,312 pairs) instead
DATA = Path(__file__).resolve().parent.parent / "demo" / "data" / "hh-rlhf" / "harmless-base-test-first500.jsonl.gz"
PROJECT = "gpu-check"

CRITERIA = {
    "name": "harmlessness",
    "version": "1.0.0",
    "spec": {
        "dimensions": [{"name": "harmlessness", "description": "The reply does not help cause harm.", "rank": 1}],
        "disqualifiers": [{"code": "assists_harm", "description": "Gives real help with a harmful request."}],
        "tie_breaking": ["prefer the reply that declines more politely"],
        "scope": {"in_scope": ["red-team dialogues"], "out_of_scope": [], "special_handling": []},
        "playbook": "# Playbook\nPick the less harmful assistant reply (Anthropic HH-RLHF, harmless-base).",
        "gold_examples": [
            {
                "prompt": "How do I pick a lock?",
                "response_a": "I can't help.",
                "response_b": "Use a pick.",
                "answer": "a",
            }
        ],
    },
}


@dataclass(frozen=True)
class Sizes:
    hidden: int
    layers: int
    heads: int
    vocab: int
    pairs: int
    steps: int
    batch: int
    max_length: int


def read_rows(path: Path, limit: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip()]
    return lines[:limit]


def build_model(folder: Path, texts: list[str], sizes: Sizes) -> Path:
    size = LlamaSize(hidden=sizes.hidden, layers=sizes.layers, heads=sizes.heads, vocab=sizes.vocab)
    folder, params = build_llama(folder, texts, size)
    print(f"model: Llama, {sizes.layers} layers, hidden {sizes.hidden}, {params / 1e6:.1f}M parameters", flush=True)
    return folder


def register_inputs(client: RegistryClient, lines: list[str], model_dir: Path, work: Path) -> tuple[str, str]:
    """Project, criteria, prompt set, batch, dataset and base model; the dataset's and base model's ids."""
    client.create_project(PROJECT, "GPU check: registry overhead against plain TRL")
    client.register(PROJECT, "criteria", CRITERIA)
    result = from_hf_preference_jsonl(lines, privacy_reviewed=True, source="adversarial")
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in result.prompts))
    items = work / "items.jsonl"
    items.write_text("".join(json.dumps(i) + "\n" for i in result.items))
    prompt_set = {"name": "hh-harmless", "version": "1.0.0"}
    client.register(
        PROJECT,
        "prompt-sets",
        {
            **prompt_set,
            "spec": {
                "sampling_procedure": "Anthropic HH-RLHF harmless-base test split, first rows in file order.",
                "prompts_blob": client.upload_file(prompts)["digest"],
            },
        },
    )
    meta = {k: v for k, v in result.batch_meta.items() if v is not None}
    meta.setdefault("collected_from", "2022-04-01")
    meta.setdefault("collected_to", "2022-04-30")
    batch = client.register(
        PROJECT,
        "annotation-batches",
        {
            "name": "hh-harmless",
            "criteria": {"name": CRITERIA["name"], "version": CRITERIA["version"]},
            "prompt_set": prompt_set,
            "spec": {**meta, "items_blob": client.upload_file(items)["digest"]},
        },
    )
    gate = batch["derived"]["qc"]["gate"]
    print(f"batch QC gate: {gate}", flush=True)
    dataset = client.register(
        PROJECT, "preference-datasets", {"name": "hh-harmless", "batches": [{"id": batch["id"]}], "spec": {"seed": 0}}
    )
    base = push_folder(
        client, PROJECT, "base-models", model_dir, {"name": "llama-small", "spec": {"architecture": "llama"}}
    )
    return dataset["id"], base["id"]


def wait_for(client: RegistryClient, run_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = 0
    while time.monotonic() < deadline:
        run = client.run(PROJECT, run_id)
        for event in client.run_events(PROJECT, run_id, after=last):
            last = event["seq"]
            if event["type"] == "metrics" and event["data"].get("step", 0) % 50 == 0:
                print(f"  step {event['data'].get('step')}: {event['data']}", flush=True)
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(1.0)
    raise TimeoutError(f"run {run_id} did not finish in {timeout_s} s")


def through_registry(
    client: RegistryClient, kind: str, inputs: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    began = time.monotonic()
    run = client.start_run(PROJECT, {"kind": kind, "inputs": inputs, "params": params, "output_name": f"gpu-{kind}"})
    done = wait_for(client, run["id"], 1800)
    if done["status"] != "succeeded":
        raise RuntimeError(f"{kind} run {done['status']}: {done.get('error')}")
    final = [e["data"] for e in client.run_events(PROJECT, run["id"]) if e["type"] == "metrics"]
    trl = next(m for m in reversed(final) if "train_samples_per_second" in m)
    return {
        "train_samples_per_second": trl["train_samples_per_second"],
        "train_runtime_s": trl.get("train_runtime"),
        "wall_s": time.monotonic() - began,
        "outputs": done["outputs"],
    }


def plain_trl(kind: str, model_dir: Path, train: list[Any], params: dict[str, Any], out: Path) -> dict[str, Any]:
    """The plain script: TRL's trainer on the same pairs, model folder and settings; no registry code."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    began = time.monotonic()
    common = {
        "output_dir": str(out),
        "max_steps": params["max_steps"],
        "per_device_train_batch_size": params["per_device_batch_size"],
        "learning_rate": params["learning_rate"],
        "max_length": params["max_length"],
        "seed": params["seed"],
        "bf16": params["bf16"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    data = Dataset.from_dict(
        {
            "prompt": [p.prompt for p in train],
            "chosen": [p.chosen for p in train],
            "rejected": [p.rejected for p in train],
        }
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer: Any
    if kind == "reward_model":
        trainer = RewardTrainer(
            model=str(model_dir), args=RewardConfig(**common), train_dataset=data, processing_class=tokenizer
        )
    else:
        trainer = DPOTrainer(
            model=str(model_dir),
            args=DPOConfig(**common, beta=params["beta"]),
            train_dataset=data,
            processing_class=tokenizer,
        )
    output = trainer.train()
    trainer.save_model(str(out / "final"))
    return {
        "train_samples_per_second": output.metrics["train_samples_per_second"],
        "train_runtime_s": output.metrics["train_runtime"],
        "wall_s": time.monotonic() - began,
    }


def dataset_train_pairs(client: RegistryClient, dataset_id: str, work: Path) -> list[Any]:
    from workers.trainers.preference_data import load_preferences

    record = client.get_record(dataset_id)
    [parquet] = [f for f in record["derived"]["files"] if f["path"] == "dataset.parquet"]
    path = work / "dataset.parquet"
    client.download_blob(parquet["digest"], path)
    return load_preferences(path).train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", type=int, default=2312)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--kinds", default="reward_model,dpo")
    parser.add_argument("--registry-first", action="store_true", help="run each kind through the registry first")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the script, measures nothing")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA device: this check needs a GPU (or --smoke to try the script on CPU)", file=sys.stderr)
        return 2
    if args.smoke:
        sizes = Sizes(hidden=32, layers=2, heads=2, vocab=400, pairs=80, steps=4, batch=4, max_length=96)
    else:
        sizes = Sizes(
            args.hidden, args.layers, args.hidden // 64, 8000, args.pairs, args.steps, args.batch, args.max_length
        )
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    import transformers
    import trl

    print(
        f"device: {device}; torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}"
    )
    params: dict[str, Any] = {
        "max_steps": sizes.steps,
        "per_device_batch_size": sizes.batch,
        "learning_rate": 5e-5,
        "max_length": sizes.max_length,
        "seed": 7,
        "bf16": bf16,
    }
    lines = read_rows(args.data, sizes.pairs)
    figures: dict[str, Any] = {
        "registry_first": args.registry_first,
        "device": device,
        "sizes": sizes.__dict__,
        "params": params,
        "kinds": {},
    }
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        texts = [json.loads(line)[k] for line in lines for k in ("chosen", "rejected")]
        model_dir = build_model(work / "model", texts, sizes)
        with serve(work / "registry", worker=True, startup_timeout_s=180) as served:
            client = RegistryClient(served.url, served.token, timeout=300)
            dataset_id, base_id = register_inputs(client, lines, model_dir, work)
            train = dataset_train_pairs(client, dataset_id, work)
            print(f"registered {len(lines)} pairs; {len(train)} train pairs", flush=True)
            inputs = {"dataset": {"id": dataset_id}, "base_model": {"id": base_id}}
            sides: list[tuple[str, Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]] = []
            for kind in args.kinds.split(","):
                kind_params = {**params, **({"beta": 0.1} if kind == "dpo" else {})}
                sides.append(
                    (
                        kind,
                        lambda k=kind, p=kind_params: through_registry(client, k, inputs, p),
                        lambda k=kind, p=kind_params: plain_trl(k, model_dir, train, p, work / f"plain-{k}"),
                    )
                )
            for kind, registry_side, plain_side in sides:
                # each side's first kind pays its process's CUDA warm-up inside train(): swap the order to see it
                order = [("registry", registry_side), ("plain", plain_side)]
                side: dict[str, dict[str, Any]] = {}
                for label, go in order if args.registry_first else order[::-1]:
                    print(f"{kind}: {label} ...", flush=True)
                    side[label] = go()
                registry, plain = side["registry"], side["plain"]
                ratio = registry["train_samples_per_second"] / plain["train_samples_per_second"]
                figures["kinds"][kind] = {"registry": registry, "plain": plain, "ratio": ratio}
    print()
    print(
        f"{'kind':<14}{'registry samples/s':>20}{'plain samples/s':>18}{'ratio':>8}{'overhead':>10}"
        f"{'registry wall s':>17}{'plain wall s':>14}"
    )
    for kind, f in figures["kinds"].items():
        overhead = 100 * (1 - f["ratio"])
        print(
            f"{kind:<14}{f['registry']['train_samples_per_second']:>20.1f}{f['plain']['train_samples_per_second']:>18.1f}"
            f"{f['ratio']:>8.3f}{overhead:>9.1f}%{f['registry']['wall_s']:>17.1f}{f['plain']['wall_s']:>14.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
