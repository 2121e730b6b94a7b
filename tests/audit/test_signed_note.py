"""GET /v1/audit/checkpoint with `Accept: text/plain`: the checkpoint as a C2SP signed note, checked by
verifiers that share no code with the server: a transcription of the spec below, and Go's
`golang.org/x/mod/sumdb/note` where a Go toolchain and Debian's `golang-golang-x-mod-dev` are installed.

The spec (https://github.com/C2SP/C2SP/blob/main/signed-note.md, tlog-checkpoint.md), as read here:
a note is UTF-8 text ending in a newline; its body ends at the last blank line, and each line after it
is `\u2014 <key name> <base64(signature)>`, the signature being a 4-byte key id (big-endian) and the
signature proper. For Ed25519 (signature type 0x01) the key id is the first 4 bytes of
SHA-256(key name || 0x0A || 0x01 || 32-byte public key) and the signature is over the body's bytes,
its final newline included. A checkpoint's body is the origin, the tree size in decimal and the base64
root hash, one per line, then any extension lines."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.settings import Settings
from app.core.signing import load_public_key
from tests.conftest import Api, World

GO_VERIFIER = Path(__file__).parent / "go" / "verify_note.go"
# where Debian's golang-golang-x-mod-dev puts golang.org/x/mod, as a GOPATH
DEBIAN_GOPATH = Path("/usr/share/gocode")
DASH = "\u2014"


class NoteRefused(Exception):
    pass


def open_note(text: str, key_name: str, public: Ed25519PublicKey) -> str:
    """The body of `text` if it holds a valid signature by (`key_name`, `public`); NoteRefused otherwise."""
    if not text.endswith("\n") or "\n\n" not in text:
        raise NoteRefused("a note ends in a newline and has a blank line before its signatures")
    split = text.rindex("\n\n")
    body, signatures = text[: split + 1], text[split + 2 :]
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(key_name.encode() + b"\n" + b"\x01" + raw).digest()[:4]
    for line in signatures.splitlines():
        dash, name, encoded = line.split(" ")
        if dash != DASH:
            raise NoteRefused(f"a signature line starts with an em dash: {line!r}")
        signature = base64.b64decode(encoded, validate=True)
        if name != key_name or signature[:4] != key_id:
            continue
        try:
            public.verify(signature[4:], body.encode())
        except InvalidSignature as exc:
            raise NoteRefused("the signature by the key does not verify") from exc
        return body
    raise NoteRefused("no signature by the key")


def _note(api: Api) -> str:
    response = api.get("/v1/audit/checkpoint", headers={"Accept": "text/plain"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text: str = response.text
    return text


def _key(api: Api) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/v1/signing-key").json()
    return body


def _tampered(note: str) -> str:
    origin, size, rest = note.split("\n", 2)
    return f"{origin}\n{int(size) + 1}\n{rest}"


def test_the_note_is_the_json_checkpoint_signed_by_the_registry_key(world: World) -> None:
    world.project()  # at least one event
    note = _note(world.admin)
    checkpoint = world.admin.get("/v1/audit/checkpoint").json()
    key = _key(world.admin)
    public = load_public_key(key["public_key_pem"])
    origin = world.state.settings.audit_origin

    body = open_note(note, origin, public)
    lines = body.splitlines()
    assert lines[0] == origin == checkpoint["origin"]
    assert int(lines[1]) == checkpoint["tree_size"] >= 1
    assert base64.b64decode(lines[2]) == bytes.fromhex(checkpoint["root_hash"])
    assert len(lines) == 3  # no extension lines
    # one signature, by the origin's key
    assert note.endswith("\n") and note.count(f"\n{DASH} ") == 1

    with pytest.raises(NoteRefused):
        open_note(_tampered(note), origin, public)
    with pytest.raises(NoteRefused):
        open_note(note, "another.example/audit", public)


def test_the_verifier_key_names_the_origin_and_the_public_key(world: World) -> None:
    key = _key(world.admin)
    name, key_hash, encoded = key["note_key"].split("+", 2)
    raw = base64.b64decode(encoded)
    public = load_public_key(key["public_key_pem"])
    assert name == world.state.settings.audit_origin
    assert raw == b"\x01" + public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_hash == hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()


def test_json_is_the_default_form(world: World) -> None:
    for accept in (None, "application/json", "*/*", "text/plain, application/json"):
        headers = {} if accept is None else {"Accept": accept}
        response = world.admin.get("/v1/audit/checkpoint", headers=headers)
        assert response.headers["content-type"] == "application/json", accept
        assert set(response.json()) == {"origin", "tree_size", "root_hash", "key_id", "signature"}


def test_the_default_origin_is_a_url_without_its_scheme() -> None:
    assert Settings(public_host="registry.example.com").audit_origin == "registry.example.com/audit"
    assert Settings(audit_origin="log.example.com/rlhf").audit_origin == "log.example.com/rlhf"
    assert "://" not in Settings().audit_origin


def _go_verify(tmp_path: Path, verifier_key: str, note: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(DEBIAN_GOPATH),
        "GOCACHE": str(tmp_path / "go-cache"),
        "GOFLAGS": "",
    }
    return subprocess.run(
        ["go", "run", str(GO_VERIFIER), verifier_key],
        input=note,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_go_sumdb_note_verifies_the_note(world: World, tmp_path: Path) -> None:
    if shutil.which("go") is None or not (DEBIAN_GOPATH / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.skip("no Go toolchain with golang.org/x/mod (apt-get install golang-go golang-golang-x-mod-dev)")
    world.project()
    note = _note(world.admin)
    verifier_key = _key(world.admin)["note_key"]

    checked = _go_verify(tmp_path, verifier_key, note)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == note[: note.rindex("\n\n") + 1]

    refused = _go_verify(tmp_path, verifier_key, _tampered(note))
    assert refused.returncode == 1 and "invalid signature" in refused.stderr, refused.stderr
