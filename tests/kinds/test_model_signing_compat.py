"""The registry's model-folder digests against OpenSSF model signing (PyPI `model-signing`), through the
library's public API: each folder is signed with a throwaway ECDSA P-256 key, and the in-toto statement
inside the Sigstore bundle it writes gives the library's per-file digests (predicate `resources`, in its
order) and its root digest (the subject's sha256). The registry must list the same files, in the same
order, with the same digests, and derive the same root digest: by its own functions on generated folders
(and the client must list a folder in that order), and through the API for a registered base model."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from app.client.uploads import folder_files
from app.core.digests import model_signing_ignores, model_signing_order
from app.kinds.model_files import HASHING, LEGACY_HASHING, folder_figures, legacy_root_digest, recompute_root_digest
from tests.conftest import World

model_signing = pytest.importorskip("model_signing")

# a name that sorts before `/` beside a folder of the same stem, and the git files the library ignores
TOKENIZER = {"tokenizer.json": b"{}", "tokenizer/vocab.json": b'{"a": 0}', "model.safetensors": b"\x00" * 64}
GIT_FILES = {
    ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
    ".gitignore": b"*.tmp\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
    ".github/workflows/ci.yml": b"on: push\n",
    "config.json": b'{"model_type": "llama"}',
    "sub/.gitattributes": b"* text\n",  # only the top-level git files are ignored
}
COMPONENTS = ["a", "a.b", "a-b", "a_b", "A", "b", "tokenizer", "tokenizer.json", "x y", "é", "a.b.c", ".hidden"]


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def _generated(seed: int) -> dict[str, bytes]:
    """Nested paths whose components share prefixes and stems, some files empty, none a folder as well."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    folders: set[str] = set()
    for _ in range(rng.randint(1, 30)):
        parts = [rng.choice(COMPONENTS) for _ in range(rng.randint(1, 4))]
        path = "/".join(parts)
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if path in files or path in folders or prefixes & files.keys():
            continue
        files[path] = b"" if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 300))
        folders |= prefixes
    return files


def _library_statement(folder: Path, work: Path) -> dict[str, Any]:
    """The in-toto statement model signing signs for `folder`, read back from the bundle it writes, after
    the library's own verifier accepted the bundle for the folder."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public, bundle = work / "key.pem", work / "key.pub", work / "model.sig"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(folder, bundle)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(folder, bundle)
    envelope = json.loads(bundle.read_text())["dsseEnvelope"]
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["predicate"]["serialization"]["method"] == "files"
    return statement


def _registry_files(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """`spec.files` as a client registers the folder: every file, by its sha256."""
    return [
        {"path": path, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
        for path, data in files.items()
    ]


def _compare(files: dict[str, bytes], folder: Path, work: Path) -> None:
    statement = _library_statement(_write(folder, files), work)
    spec_files = _registry_files(files)
    listed = sorted(
        (f for f in spec_files if not model_signing_ignores(f["path"])), key=lambda f: model_signing_order(f["path"])
    )
    resources = statement["predicate"]["resources"]
    assert [(r["name"], r["algorithm"], r["digest"]) for r in resources] == [
        (f["path"], "sha256", f["digest"].removeprefix("sha256:")) for f in listed
    ]
    # the client lists a folder it pushes in the same order
    pushed = [path for path, _ in folder_files(folder) if not model_signing_ignores(path)]
    assert pushed == [r["name"] for r in resources]
    figures = folder_figures({"files": spec_files})
    assert figures["root_digest"] == "sha256:" + statement["subject"][0]["digest"]["sha256"]
    assert figures["hashing"] == HASHING
    ignored = sorted(f["path"] for f in spec_files if f["path"] not in {r["name"] for r in resources})
    assert figures.get("root_digest_ignores", []) == ignored


def test_a_name_sorting_before_slash_follows_the_library_order(tmp_path: Path) -> None:
    _compare(TOKENIZER, tmp_path / "model", tmp_path)
    # a plain string sort, the registry's earlier rule, puts tokenizer.json first and differs
    assert (
        legacy_root_digest(_registry_files(TOKENIZER))
        != folder_figures({"files": _registry_files(TOKENIZER)})["root_digest"]
    )


def test_git_files_are_left_out_at_the_top_only(tmp_path: Path) -> None:
    _compare(GIT_FILES, tmp_path / "model", tmp_path)
    figures = folder_figures({"files": _registry_files(GIT_FILES)})
    assert figures["root_digest_ignores"] == [".git/HEAD", ".gitattributes", ".github/workflows/ci.yml", ".gitignore"]


def test_empty_files_and_a_folder_of_only_ignored_files(tmp_path: Path) -> None:
    _compare({"empty.bin": b"", "nested/deeper/empty": b"", "weights.bin": b"w"}, tmp_path / "a", tmp_path)
    _compare({".gitattributes": b"x"}, tmp_path / "b", tmp_path)


@pytest.mark.parametrize("seed", range(12))
def test_generated_folders_match(tmp_path: Path, seed: int) -> None:
    files = _generated(seed)
    if seed % 3 == 0:
        files |= {".gitattributes": b"", ".git/config": os.urandom(8)}
    _compare(files, tmp_path / "model", tmp_path)


def test_stored_records_keep_the_rule_they_name() -> None:
    """A record registered under the earlier rule keeps its root digest: recomputing follows its label."""
    files = _registry_files({**TOKENIZER, ".gitattributes": b"x"})
    old = {"root_digest": legacy_root_digest(files), "hashing": LEGACY_HASHING}
    new = folder_figures({"files": files})
    assert old["root_digest"] != new["root_digest"]
    assert recompute_root_digest({"files": files}, old) == old["root_digest"]
    assert recompute_root_digest({"files": files}, new) == new["root_digest"]
    with pytest.raises(KeyError):
        recompute_root_digest({"files": files}, {"hashing": "no-such-rule"})


def test_the_library_key_signer_takes_no_ed25519_key(tmp_path: Path) -> None:
    """Why the registry, whose signing key is Ed25519, offers no model-signing bundle of its own: the
    library signs with ECDSA keys (P-256, P-384, P-521) only."""
    key = tmp_path / "ed25519.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises((ValueError, AttributeError)):
        model_signing.signing.Config().use_elliptic_key_signer(private_key=key)


def test_registered_base_model_root_digest_is_the_library_one(world: World, tmp_path: Path) -> None:
    project = world.project()
    trainer = world.member(project, "trainer")
    files = {**TOKENIZER, **GIT_FILES}
    spec_files = []
    for path, data in files.items():
        blob = trainer.post("/v1/blobs", content=data).json()
        spec_files.append({"path": path, "digest": blob["digest"], "size": len(data)})
    response = trainer.post(f"/v1/projects/{project}/base-models", json={"name": "m", "spec": {"files": spec_files}})
    assert response.status_code == 201, response.text
    statement = _library_statement(_write(tmp_path / "model", files), tmp_path)
    derived = response.json()["derived"]
    assert derived["root_digest"] == "sha256:" + statement["subject"][0]["digest"]["sha256"]
    assert derived["hashing"] == HASHING
