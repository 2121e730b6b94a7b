"""The audit log: save its signed checkpoint, and verify it on the client, trusting nothing the server computed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from app.audit.checkpoint import CheckpointError, verify_checkpoint
from app.audit.client_verify import VerifyFailed, check_extends, check_root, replay_log
from app.cli.console import UserError, err, print_json, read_json_object
from app.client import RegistryClient
from app.core.signing import load_public_key

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to FILE")] = None,
) -> None:
    """Print the log's current signed checkpoint as JSON; keep it to check later that the log only grew
    (`audit verify --checkpoint FILE`)."""
    with RegistryClient() as client:
        checkpoint = client.audit_checkpoint()
    text = json.dumps(checkpoint, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"checkpoint of {checkpoint['tree_size']} events written to {output}")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="a checkpoint saved earlier: check that the log extends it")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="the server's ed25519 public key (PEM) instead of asking it")
    ] = None,
    server: Annotated[bool, typer.Option("--server", help="only ask the server to recompute (admin)")] = False,
) -> None:
    """Verify the audit log here, trusting nothing the server computed; exit 1 when it does not check.

    Without --checkpoint, read every event (a global admin's token), recompute each leaf hash and the
    RFC 9162 root, and check them against the signed checkpoint; the first bad event is named. With
    --checkpoint FILE, check FILE's signature and an RFC 9162 consistency proof that today's log
    extends it. Pass --public-key to check signatures against a key kept outside the server."""
    with RegistryClient() as client:
        try:
            if server:
                result = client.audit_verify()
            else:
                key = load_public_key(public_key.read_bytes() if public_key else client.signing_key()["public_key_pem"])
                if checkpoint is None:
                    result = _verify_whole_log(client, key)
                else:
                    result = _verify_extends(client, key, read_json_object(checkpoint, "a saved checkpoint"))
        except (CheckpointError, VerifyFailed, ValueError) as exc:
            err.print(f"[red]audit log does not verify[/red]: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from exc
    print_json(result)
    if not result["ok"]:
        raise typer.Exit(1)


def _verify_whole_log(client: RegistryClient, key: Ed25519PublicKey) -> dict[str, Any]:
    if not client.me().get("global_admin"):
        raise UserError(
            "reading every audit event needs a global admin's token",
            "any viewer can run --checkpoint FILE",
            exit_code=2,
        )
    signed = client.audit_checkpoint()
    size, root = verify_checkpoint(signed, key)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with progress:
        task = progress.add_task("audit events", total=size)

        def events() -> Iterator[dict[str, Any]]:
            for event in client.iter_audit():
                progress.advance(task)
                yield event

        check_root(replay_log(events(), size), root)
    return {
        "ok": True,
        "origin": signed["origin"],
        "tree_size": size,
        "root_hash": root.hex(),
        "key_id": signed["key_id"],
    }


def _verify_extends(client: RegistryClient, key: Ed25519PublicKey, saved: dict[str, Any]) -> dict[str, Any]:
    old_size, old_root = verify_checkpoint(saved, key)
    current = client.audit_checkpoint()
    new_size, new_root = verify_checkpoint(current, key)
    if saved["origin"] != current["origin"]:
        raise VerifyFailed(f"the saved checkpoint is of the log {saved['origin']!r}, not {current['origin']!r}")
    proof: list[bytes] = []
    if 0 < old_size < new_size:
        hashes = client.audit_consistency_proof(old_size, new_size)["hashes"]
        proof = [bytes.fromhex(h) for h in hashes]
    check_extends((old_size, old_root), (new_size, new_root), proof)
    return {"ok": True, "origin": current["origin"], "from": old_size, "to": new_size, "root_hash": new_root.hex()}
