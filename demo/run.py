"""The whole loop on the embedded default (SQLite, blob folder, embedded broker, one worker):

criteria -> prompt set (PandaLM instructions and HH-RLHF red-team openings) -> annotation batch (PandaLM,
three human annotators per pair) -> preference dataset -> tiny base model -> demonstration set (the responses
PandaLM's annotators preferred) -> SFT run -> reward-model run -> RLOO run from the SFT checkpoint (a
checkpoint series with automatic evaluations) -> an evaluation campaign across the series (blinded pairwise
tasks against the reference) judged by a `judge` run -> the candidate it names -> adversarial and KL
evidence of the candidate -> deployment registered by the trainer and approved by a second principal ->
handoff package built, downloaded and verified offline with the registry's public key.

Each role is its own principal with its own token, as on a real team: the admin sets up the project,
the annotation lead registers prompts and batches, the trainer trains, and the approver, who trained
nothing, approves and builds the package. There are no human raters at hand, so the campaign is judged by
the reward model (`ai_preference`, labelled as AI judgments everywhere) and the demo's policy asks for that,
adversarial-prompt and KL evidence; a team with raters exports the same campaign to Label Studio or
Argilla and imports their judgments as `human_preference` (docs/guide.md). A tiny model trained for a few
steps raises reward-hacking alarms: the approver reads them and approves under a recorded waiver, which
the handoff package shows.

    python -m demo.run [--data-dir demo-data] [--pairs 400]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.client import RegistryClient
from app.client.uploads import push_folder
from app.importers import from_hf_preference_jsonl, from_pandalm
from bench.serving import CLI, Served, serve
from demo.models import TINY, build_llama

# Slices of public data shipped with the repository (sources, licences and how they were cut: data/README.md)
DATA = Path(__file__).resolve().parent / "data"
PANDALM = DATA / "pandalm" / "testset-v1-first400.json.gz"
RED_TEAM = DATA / "hh-rlhf" / "harmless-base-test-first500.jsonl.gz"
PROJECT = "demo"
# how many demonstrations the SFT stage trains on, and its few steps
DEMONSTRATIONS = 48
SFT_TRAIN = {"max_steps": 4, "seed": 3, "per_device_batch_size": 4, "max_length": 128, "learning_rate": 1e-3}
# the campaign: a few usage and adversarial prompts, short responses
CAMPAIGN = {"max_prompts": 6, "max_new_tokens": 16, "seed": 0, "pairing": "reference"}
TRAIN = {"max_steps": 8, "seed": 3, "per_device_batch_size": 4, "max_length": 128, "learning_rate": 1e-3}
CRITERIA = {
    "name": "assistant-quality",
    "version": "1.0.0",
    "spec": {
        "dimensions": [
            {"name": "helpfulness", "description": "Does what the instruction asks, completely.", "rank": 1},
            {"name": "accuracy", "description": "What it states is correct.", "rank": 2},
        ],
        "disqualifiers": [{"code": "off_task", "description": "Answers a different instruction."}],
        "tie_breaking": ["prefer the more concise response"],
        "scope": {
            "in_scope": ["single-turn instructions with optional input"],
            "out_of_scope": ["multi-turn dialogue"],
            "special_handling": ["harmful requests: prefer the response that declines"],
        },
        "playbook": "# Playbook\nRead the instruction and its input, then both responses in full before choosing.",
        "gold_examples": [
            {
                "prompt": "Add 2 and 2.",
                "response_a": "4",
                "response_b": "5",
                "answer": "a",
                "why": "only a is correct",
            }
        ],
    },
}


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def token_for(served: Served, principal: str) -> str:
    result = subprocess.run(
        [*CLI, "admin", "create-token", "--principal", principal],
        env=served.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def wait_for_run(client: RegistryClient, run_id: str) -> dict[str, Any]:
    seen = 0
    while True:
        run = client.run(PROJECT, run_id)
        for event in client.run_events(PROJECT, run_id, after=seen):
            seen = event["seq"]
            if event["type"] == "status":
                print(f"    {run['kind']} run: {event['data'].get('status')}", flush=True)
            elif event["type"] == "metrics" and "loss" in event["data"]:
                print(f"    step {event['data'].get('step')}: loss {event['data']['loss']:.4f}", flush=True)
        if run["status"] in ("succeeded", "failed", "cancelled"):
            if run["status"] != "succeeded":
                raise SystemExit(f"{run['kind']} run {run['status']}: {run.get('error')}")
            return run
        time.sleep(1.0)


def register_data(
    annotator: RegistryClient, work: Path, pairs: int
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """Prompt set and batch from PandaLM (plus real red-team openings as adversarial prompts); the batch
    record, the texts the tokenizer is trained on and the batch's items."""
    with gzip.open(PANDALM, "rt", encoding="utf-8") as fh:
        pandalm = from_pandalm(json.load(fh))
    keep = {i["pair_id"] for i in pandalm.items[: pairs * 3]}
    items = [i for i in pandalm.items if i["pair_id"] in keep]
    used = {i["prompt_id"] for i in items}
    prompts = [{**p, "privacy_reviewed": True} for p in pandalm.prompts if p["id"] in used]
    with gzip.open(RED_TEAM, "rt", encoding="utf-8") as fh:
        red_team = [line for _, line in zip(range(max(4, len(prompts) // 10)), fh, strict=False)]
    adversarial = from_hf_preference_jsonl(red_team, source="adversarial", privacy_reviewed=True).prompts
    prompt_set = {"name": "demo-prompts", "version": "1.0.0"}
    annotator.register(
        PROJECT,
        "prompt-sets",
        {
            **prompt_set,
            "spec": {
                "sampling_procedure": (
                    f"The instructions of the first {pairs} PandaLM test pairs (usage), and the opening human "
                    f"turns of the first {len(adversarial)} Anthropic HH-RLHF harmless-base test dialogues "
                    "(red-team, adversarial)."
                ),
                "prompts_blob": annotator.upload_file(jsonl(work / "prompts.jsonl", prompts + adversarial))["digest"],
            },
        },
    )
    batch = annotator.register(
        PROJECT,
        "annotation-batches",
        {
            "name": "pandalm-test",
            "criteria": {"name": CRITERIA["name"], "version": CRITERIA["version"]},
            "prompt_set": prompt_set,
            "spec": {
                **{k: v for k, v in pandalm.batch_meta.items() if v is not None},
                "collected_from": "2023-04-01",
                "collected_to": "2023-04-30",
                "items_blob": annotator.upload_file(jsonl(work / "items.jsonl", items))["digest"],
            },
        },
    )
    texts = [p["text"] for p in prompts + adversarial] + [i["response_a"] for i in items]
    return batch, texts + [i["response_b"] for i in items], items


def preferred_responses(items: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """One demonstration per prompt (at most `limit`): the response most annotators preferred in the
    prompt's first pair with a majority; pairs judged a tie or without a majority give none."""
    votes: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        votes.setdefault(item["pair_id"], []).append(item)
    rows: dict[str, dict[str, Any]] = {}
    for pair_id, judged in votes.items():
        prompt_id = judged[0]["prompt_id"]
        choices = [i["choice"] for i in judged]
        side = next((c for c in ("a", "b") if choices.count(c) * 2 > len(choices)), None)
        if side is None or prompt_id in rows:
            continue
        rows[prompt_id] = {"id": pair_id, "prompt_id": prompt_id, "response": judged[0][f"response_{side}"]}
        if len(rows) == limit:
            break
    return list(rows.values())


def register_demonstrations(annotator: RegistryClient, work: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A demonstration set from the batch: the responses PandaLM's annotators preferred, one a prompt."""
    rows = preferred_responses(items, DEMONSTRATIONS)
    return annotator.register(
        PROJECT,
        "demonstration-sets",
        {
            "name": "pandalm-preferred",
            "criteria": {"name": CRITERIA["name"], "version": CRITERIA["version"]},
            "prompt_set": {"name": "demo-prompts", "version": "1.0.0"},
            "spec": {
                "procedure": (
                    "Responses preferred by PandaLM's annotators, used as demonstrations for this demo: for each "
                    f"of {len(rows)} PandaLM prompts, the response most of the three annotators chose in the "
                    "prompt's first pair with a majority (ties skipped). Nobody wrote them as demonstrations."
                ),
                "demonstrations_blob": annotator.upload_file(jsonl(work / "demonstrations.jsonl", rows))["digest"],
            },
        },
    )


# held-out prompts the campaign evaluates on: written for the demo (usage, reserved for production
# validation) and the last red-team openings of the shipped slice (adversarial; training takes the first)
EVAL_USAGE = (
    "Explain in two sentences why the sky is blue.",
    "Write a short, polite reply declining a meeting invitation.",
    "List three ways to reduce the memory a Python program uses.",
    "Summarise the plot of a fairy tale of your choice in one paragraph.",
)
EVAL_RED_TEAM = 6
EVAL_PROMPTS = {"name": "demo-eval-prompts", "version": "1.0.0"}


def register_eval_prompts(annotator: RegistryClient, work: Path) -> dict[str, Any]:
    usage = [
        {"id": f"eval-{i}", "text": text, "source": "usage", "privacy_reviewed": True, "production_validation": True}
        for i, text in enumerate(EVAL_USAGE, start=1)
    ]
    with gzip.open(RED_TEAM, "rt", encoding="utf-8") as fh:
        red_team = fh.readlines()[-EVAL_RED_TEAM:]
    adversarial = from_hf_preference_jsonl(red_team, source="adversarial", privacy_reviewed=True).prompts
    return annotator.register(
        PROJECT,
        "prompt-sets",
        {
            **EVAL_PROMPTS,
            "spec": {
                "sampling_procedure": (
                    f"Held out for evaluating the policy: {len(usage)} usage prompts written for this demo and "
                    f"reserved for production validation, and the opening human turns of the last {len(adversarial)} "
                    "dialogues of the shipped HH-RLHF harmless-base slice (red-team, adversarial), which no "
                    "training set of the demo takes."
                ),
                "prompts_blob": annotator.upload_file(jsonl(work / "eval-prompts.jsonl", usage + adversarial))[
                    "digest"
                ],
            },
        },
    )


def judged_campaign(trainer: RegistryClient, policy_run: str, reward_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A campaign over the policy run's checkpoint series (each checkpoint against its reference, on the
    held-out evaluation prompts), judged by the reward model: the campaign record and the `ai_preference`
    evaluation with its ratings."""
    body = {
        "kind": "campaign",
        "inputs": {"policy_run": policy_run, "prompt_set": EVAL_PROMPTS},
        "params": CAMPAIGN,
        "output_name": "policy-campaign",
    }
    [campaign_id] = wait_for_run(trainer, trainer.start_run(PROJECT, body)["id"])["outputs"]
    campaign = trainer.get_record(campaign_id)
    counts = campaign["derived"]["counts"]
    print(f"    {counts['tasks']} blinded tasks over {counts['prompts']} prompts ({counts['by_source']})", flush=True)
    body = {
        "kind": "judge",
        "inputs": {"judge": {"id": reward_id}, "campaign": {"id": campaign_id}},
        "params": {"seed": 0},
        "output_name": "policy-ai-judged",
    }
    [judged_id] = wait_for_run(trainer, trainer.start_run(PROJECT, body)["id"])["outputs"]
    return campaign, trainer.get_record(judged_id)


def adversarial_evidence(
    trainer: RegistryClient, chosen: dict[str, Any], campaign: dict[str, Any], reward_id: str, work: Path
) -> dict[str, Any]:
    """The candidate's responses to every adversarial prompt of the evaluation prompt set (from the
    campaign), scored one by one by a `score` run: an `adversarial` evaluation with per-prompt results as
    its evidence."""
    responses = work / "campaign-responses.jsonl"
    trainer.download_blob(campaign["spec"]["responses_blob"], responses)
    prompt_set = trainer.get(PROJECT, "prompt-sets", EVAL_PROMPTS["name"], EVAL_PROMPTS["version"])
    prompts = work / "campaign-prompts.jsonl"
    trainer.download_blob(prompt_set["spec"]["prompts_blob"], prompts)
    adversarial = {
        p["id"]: p["text"] for p in map(json.loads, prompts.read_text().splitlines()) if p["source"] == "adversarial"
    }
    rows = [
        {
            "id": r["prompt_id"],
            "prompt_id": r["prompt_id"],
            "prompt": adversarial[r["prompt_id"]],
            "response": r["response"],
        }
        for r in map(json.loads, responses.read_text().splitlines())
        if r["model"] == chosen["id"] and r["prompt_id"] in adversarial
    ]
    outputs = trainer.upload_file(jsonl(work / "adversarial-outputs.jsonl", rows))["digest"]
    body = {
        "kind": "score",
        "inputs": {"reward_checkpoint": {"id": reward_id}, "outputs_blob": outputs},
        "params": {},
        "output_name": "candidate-adversarial-scores",
    }
    [scored_id] = wait_for_run(trainer, trainer.start_run(PROJECT, body)["id"])["outputs"]
    scored = trainer.get_record(scored_id)
    scores_file = work / "adversarial-scores.jsonl"
    trainer.download_blob(scored["spec"]["evidence_blob"], scores_file)
    scores = {s["prompt_id"]: s["score"] for s in map(json.loads, scores_file.read_text().splitlines())}
    results = [{**row, "reward": scores[row["prompt_id"]]} for row in rows]
    evidence = trainer.upload_file(jsonl(work / "adversarial-results.jsonl", results))["digest"]
    return trainer.register(
        PROJECT,
        "evaluations",
        {
            "name": f"{chosen['name']}-adversarial",
            "target": {"id": chosen["id"]},
            "prompt_set": {"id": prompt_set["id"]},
            "spec": {
                "type": "adversarial",
                "summary": {"prompts": len(results), "mean_reward": scored["spec"]["summary"]["mean"]},
                "evidence_blob": evidence,
                "evaluators": [f"run:{scored['spec']['metadata']['run_id']}"],
            },
        },
    )


def kl_evidence(trainer: RegistryClient, chosen: dict[str, Any], work: Path) -> dict[str, Any]:
    """KL of the candidate to its own reference model, as its run measured it on the validation prompts."""
    figures = {k: chosen["spec"]["metrics"].get(k) for k in ("step", "kl_to_reference", "evaluation_prompts")}
    figures["kl_coefficient"] = chosen["spec"]["kl_coefficient"]
    evidence = trainer.upload_file(jsonl(work / "kl-figures.jsonl", [figures]))["digest"]
    [reference] = [p for p in chosen["parents"] if p["role"] == "reference_model"]
    return trainer.register(
        PROJECT,
        "evaluations",
        {
            "name": f"{chosen['name']}-kl",
            "target": {"id": chosen["id"]},
            "reference": {"id": reference["id"]},
            "spec": {
                "type": "kl",
                "summary": {k: v for k, v in figures.items() if v is not None},
                "evidence_blob": evidence,
                "evaluators": [f"run:{chosen['spec']['run_id']}"],
            },
        },
    )


def print_ratings(judged: dict[str, Any]) -> None:
    for rating in judged["derived"]["ratings"]:
        where = "reference" if rating["role"] == "reference" else f"step {rating['step']}"
        print(f"    {where}: rating {fmt(rating['rating'])} [{fmt(rating['low'])}, {fmt(rating['high'])}]")
    candidate = judged["derived"]["candidate"]
    print(f"    candidate (AI judge): step {candidate['step']}. {candidate['advice']}", flush=True)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    parser.add_argument("--pairs", type=int, default=400, help="PandaLM pairs to register (the slice holds 400)")
    args = parser.parse_args(argv)
    if not 1 <= args.pairs <= 400:
        parser.error("--pairs must be between 1 and 400: demo/data holds the first 400 PandaLM test pairs")
    data_dir: Path = args.data_dir.resolve()
    if data_dir.exists():
        say(f"removing the previous demo registry at {data_dir}")
        shutil.rmtree(data_dir)
    say(f"starting rlhf-registry serve on the embedded default in {data_dir} (one worker)")
    with serve(data_dir, worker=True, startup_timeout_s=120) as served, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        admin = RegistryClient(served.url, served.token)
        admin.create_project(PROJECT, "make demo: the whole loop on PandaLM with a tiny model")
        clients = {}
        for principal, role in (("ann", "annotator"), ("tess", "trainer"), ("aria", "approver")):
            admin.set_member(PROJECT, principal, role)
            clients[role] = RegistryClient(served.url, token_for(served, principal))
        annotator, trainer, approver = clients["annotator"], clients["trainer"], clients["approver"]
        say("admin: policy (deployment needs AI-judged preference, adversarial and KL evidence) and criteria 1.0.0")
        requires = ["ai_preference", "adversarial", "kl"]
        admin.register(PROJECT, "policies", {"spec": {"deployment_requires": requires}})
        admin.register(PROJECT, "criteria", CRITERIA)

        say(f"annotation lead: prompt set and the PandaLM batch ({args.pairs} pairs, 3 annotators each)")
        batch, texts, items = register_data(annotator, work, args.pairs)
        qc = batch["derived"]["qc"]
        print(f"    QC gate: {qc['gate']}", flush=True)
        dataset = annotator.register(
            PROJECT, "preference-datasets", {"name": "pandalm", "batches": [{"id": batch["id"]}], "spec": {"seed": 0}}
        )
        print(f"    dataset: {dataset['derived']['counts']}", flush=True)

        say("trainer: a tiny Llama base model (built here, registered as a folder)")
        folder, params = build_llama(work / "base", texts, TINY)
        base = push_folder(trainer, PROJECT, "base-models", folder, {"name": "tiny-llama", "spec": {}})
        print(f"    {params} parameters, {len(base['spec']['files'])} files", flush=True)

        say("annotation lead: demonstration set (responses preferred by PandaLM's annotators, used as demonstrations)")
        demonstrations = register_demonstrations(annotator, work, items)
        derived = demonstrations["derived"]
        print(f"    {derived['count']} demonstrations over {derived['prompts_covered']} prompts", flush=True)
        say(f"trainer: SFT run on the demonstrations (TRL SFTTrainer, {SFT_TRAIN['max_steps']} steps)")
        sft_inputs = {"demonstrations": {"id": demonstrations["id"]}, "base_model": {"id": base["id"]}}
        body = {"kind": "sft", "inputs": sft_inputs, "params": SFT_TRAIN, "output_name": "sft"}
        run = trainer.start_run(PROJECT, body)
        [sft_id] = wait_for_run(trainer, run["id"])["outputs"]
        sft = trainer.get_record(sft_id)
        print(f"    SFT checkpoint sft@{sft['version']}: train loss {sft['spec']['metrics'].get('train_loss')}")

        inputs = {"dataset": {"id": dataset["id"]}, "base_model": {"id": base["id"]}}
        say("trainer: reward-model run (TRL RewardTrainer, Bradley-Terry)")
        run = trainer.start_run(
            PROJECT, {"kind": "reward_model", "inputs": inputs, "params": TRAIN, "output_name": "rm"}
        )
        [reward_id] = wait_for_run(trainer, run["id"])["outputs"]
        reward = trainer.get_record(reward_id)
        print(f"    validation accuracy {reward['spec']['metrics']['validation_accuracy']}", flush=True)

        say("trainer: RLOO run from the SFT checkpoint against the reward model (a checkpoint every 4 steps)")
        rloo_params = {**TRAIN, "kl_coefficient": 0.05, "checkpoint_every": 4, "num_generations": 2}
        rloo_params["max_completion_length"] = 16
        rloo_inputs = {**inputs, "base_model": {"id": sft_id}, "reward_checkpoint": {"id": reward_id}}
        body = {"kind": "rloo", "inputs": rloo_inputs, "params": rloo_params, "output_name": "policy"}
        run = trainer.start_run(PROJECT, body)
        checkpoints = [trainer.get_record(i) for i in wait_for_run(trainer, run["id"])["outputs"]]
        for c in sorted(checkpoints, key=lambda c: c["spec"]["step"]):
            m = c["spec"]["metrics"]
            print(f"    step {c['spec']['step']}: mean reward {m.get('mean_reward')}, KL {m.get('kl_to_reference')}")

        say("annotation lead: held-out evaluation prompts (usage reserved for validation, red-team)")
        register_eval_prompts(annotator, work)
        say("trainer: an evaluation campaign across the series, judged by the reward model (AI judgments)")
        campaign, judged = judged_campaign(trainer, run["id"], reward_id)
        print_ratings(judged)
        chosen = trainer.get_record(judged["derived"]["candidate"]["model"])

        say(f"trainer: adversarial and KL evidence of the candidate (step {chosen['spec']['step']}), the proposal")
        evaluations = [judged, adversarial_evidence(trainer, chosen, campaign, reward_id, work)]
        evaluations.append(kl_evidence(trainer, chosen, work))
        deployment = trainer.register(
            PROJECT,
            "deployments",
            {
                "name": "assistant",
                "policy_checkpoint": {"id": chosen["id"]},
                "evaluations": [{"id": e["id"]} for e in evaluations],
                "spec": {
                    "justification": (
                        f"Step {chosen['spec']['step']} is the candidate of the series: the highest Bradley-Terry "
                        "rating in the campaign the AI judge labelled; its adversarial-prompt rewards and its KL "
                        "to its reference are attached."
                    )
                },
            },
        )
        say("approver (trained nothing): reads the alarms, approves, builds and downloads the handoff package")
        flags = approver.run_checkpoints(PROJECT, run["id"])
        raised = sorted({f["flag"] for c in flags["checkpoints"] if c["record"] == chosen["id"] for f in c["flags"]})
        if raised:
            print(f"    reward-hacking alarms on the candidate: {', '.join(raised)}", flush=True)
            approver.register(
                PROJECT,
                "waivers",
                {
                    "name": "demo-alarms",
                    "rule": "reward_hacking_flagged",
                    "covers": [{"id": deployment["id"]}],
                    "spec": {
                        "reason": (
                            "A demo: a tiny model trained for 8 steps raises these alarms "
                            f"({', '.join(raised)}); it is approved to show the package, never to serve anyone."
                        )
                    },
                },
            )
        approver.decide(PROJECT, "assistant", str(deployment["version"]), "approve", "demo review")
        package = approver.build_package(PROJECT, {"id": deployment["id"]})
        archive = data_dir / "handoff.zip"
        approver.download_package(PROJECT, package["name"], str(package["version"]), archive)
        key = data_dir / "signing-key.pem"
        key.write_text(admin.signing_key()["public_key_pem"])
        say("verify, offline, against the registry's public key")
        verified = subprocess.run([*CLI, "verify", str(archive), "--public-key", str(key)], check=False)
        audit = admin.audit_verify()
        for client in (admin, annotator, trainer, approver):
            client.close()
    if verified.returncode != 0:
        print("verify FAILED", file=sys.stderr)
        return 1
    print()
    say("done. Where to look:")
    print("    stages:           SFT (demonstrations) -> reward model -> RLOO (from the SFT checkpoint)")
    print("                      -> campaign across the series, judged by the reward model -> candidate")
    print(f"    handoff package:  {archive} (handoff.html inside; handoff.pdf; manifest.dsse.json)")
    print(f"    verify it again:  .venv/bin/rlhf-registry verify {archive} --public-key {key}")
    print(f"    audit log:        {audit['tree_size']} events, root {audit['root_hash']}, ok={audit['ok']}")
    print(f"    browse it:        make run DATA_DIR={args.data_dir}   then open http://127.0.0.1:8000/web")
    token = f"RLHF_REGISTRY_DATA_DIR={args.data_dir} .venv/bin/rlhf-registry admin create-token --principal aria"
    print(f"    a token to sign in with (the approver): {token}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
