"""Model folder files: path rules, a duplicate-path check whose work grows linearly with the folder, and
the root digest in OpenSSF model signing's order (checked against the library in test_model_signing_compat)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from app.kinds.model_files import HASHING, ModelFile, check_unique_paths, folder_figures, legacy_root_digest

DIGEST = "sha256:" + "ab" * 32


class CountedPath(str):
    """A path that counts the hashing and comparing done with it: the work of a duplicate check."""

    operations = 0

    def __hash__(self) -> int:
        CountedPath.operations += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        CountedPath.operations += 1
        return str.__eq__(self, other)


def _folder(n: int) -> list[dict[str, Any]]:
    return [{"path": CountedPath(f"shards/layer-{i:06d}.safetensors"), "digest": DIGEST, "size": 1} for i in range(n)]


@pytest.mark.parametrize("n", [1_000, 200_000])
def test_duplicate_check_work_is_linear(n: int) -> None:
    files = _folder(n)
    CountedPath.operations = 0
    check_unique_paths(files)
    assert CountedPath.operations <= 3 * n


def test_repeated_paths_are_named() -> None:
    files = [*_folder(5_000), {"path": "shards/layer-000042.safetensors", "digest": DIGEST, "size": 1}]
    with pytest.raises(ValueError, match="layer-000042"):
        check_unique_paths(files)


@pytest.mark.parametrize(
    "path",
    [
        "weights\x00.bin",
        "config\n.json",
        "model\x1b[31m.bin",
        "a\x7f",
        "c1\x85.bin",
        "C:weights.bin",
        "c:/windows/model.bin",
        "~/model.bin",
        "~root",
        "/etc/passwd",
        "a/../b",
        "a\\b",
        "a//b",
        "\udc00.bin",
    ],
)
def test_unsafe_paths_are_refused_by_name(path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ModelFile(path=path, digest=DIGEST, size=1)
    assert repr(path) in str(raised.value)


@pytest.mark.parametrize("path", ["model.safetensors", "tokenizer/vocab.json", "a~b/c:d", "sub/~x", ".hidden"])
def test_ordinary_paths_pass(path: str) -> None:
    assert ModelFile(path=path, digest=DIGEST, size=1).path == path


def _entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_root_digest_orders_by_path_components_and_leaves_top_level_git_files_out() -> None:
    files = [
        _entry("tokenizer.json", b"t"),
        _entry(".gitattributes", b"g"),
        _entry("tokenizer/vocab.json", b"v"),
        _entry("sub/.gitignore", b"s"),
        _entry(".git/HEAD", b"h"),
    ]
    # by components: sub/.gitignore, tokenizer/vocab.json (its `tokenizer` is a prefix of `tokenizer.json`)
    expected = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in (b"s", b"v", b"t"))).hexdigest()
    figures = folder_figures({"files": files})
    assert figures["root_digest"] == "sha256:" + expected
    assert figures["root_digest_ignores"] == [".git/HEAD", ".gitattributes"]
    assert figures["hashing"] == HASHING and figures["file_count"] == 5


def test_folders_without_ignored_files_list_none_and_keep_their_earlier_digest() -> None:
    files = [_entry("config.json", b"c"), _entry("model.safetensors", b"m")]
    figures = folder_figures({"files": files})
    assert "root_digest_ignores" not in figures
    assert figures["root_digest"] == legacy_root_digest(files)
