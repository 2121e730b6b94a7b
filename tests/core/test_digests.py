"""The fast path of canonical_json gives exactly the bytes of the rfc8785 package, or defers to it."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import rfc8785

from app.core import digests
from app.core.digests import canonical_json

EDGE_FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-4,
    9.9999e-5,
    1e-5,
    1e-7,
    5e-324,
    1e15 + 0.5,
    1e16,
    1e16 + 2.0,
    1e21,
    1e22,
    2.0**53 - 1,
    2.0**53,
    2.0**53 + 2,
    1.7976931348623157e308,
    0.1 + 0.2,
    123456.789,
    4.35,
    1 / 3,
]
EDGE_INTS = [0, 1, -1, 2**53 - 1, -(2**53 - 1)]
EDGE_STRINGS = ["", "a", "é", "\x00\x01\x1f\x7f", '"\\/', "\u2028\u2029", "\U0001f600", "\ufb33", "\ud7ff", "\uffff"]
EDGE_KEYS = ["", "a", "B", "é", "\u20ac", "\U0001f600", "\ufb33", "\U00010000", "\uffff", "1", "aa"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth < 3 and pick < 0.25:
        return {
            rng.choice(EDGE_KEYS) + rng.choice(EDGE_KEYS): _random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))
        }
    if depth < 3 and pick < 0.4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if pick < 0.55:
        return rng.choice(EDGE_FLOATS) * rng.choice([1, -1])
    if pick < 0.7:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    if pick < 0.8:
        return rng.choice([*EDGE_INTS, rng.randint(-(10**6), 10**6)])
    if pick < 0.9:
        return rng.choice(EDGE_STRINGS) + rng.choice(EDGE_STRINGS)
    return rng.choice([None, True, False])


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as exc:  # the reference's refusal is what canonical_json must repeat
        return type(exc)


def test_generated_values_match_the_reference_byte_for_byte() -> None:
    rng = random.Random(8785)
    for _ in range(20000):
        value = _random_value(rng)
        expected = _reference(value)
        if isinstance(expected, bytes):
            assert canonical_json(value) == expected, value
        else:
            with pytest.raises(expected):
                canonical_json(value)


@pytest.mark.parametrize("value", [*EDGE_FLOATS, *EDGE_INTS, *EDGE_STRINGS, {k: 1 for k in EDGE_KEYS}])
def test_edge_values_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == _reference(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, 2**53, -(2**53), 10**30, "\ud800", {1: 2}])
def test_what_the_reference_refuses_is_refused(value: Any) -> None:
    expected = _reference(value)
    assert not isinstance(expected, bytes)
    with pytest.raises(expected):
        canonical_json(value)


def test_integral_floats_are_written_as_integers_like_ecmascript() -> None:
    assert canonical_json({"minutes": 90.0, "share": 0.05}) == b'{"minutes":90,"share":0.05}'


def test_the_prebuilt_c_encoder_writes_what_json_dumps_writes() -> None:
    assert digests._C_ENCODER is not None  # CPython: the fast path above ran through it
    rng = random.Random(7)
    compared = 0
    for _ in range(3000):
        try:
            value = digests._plain(_random_value(rng))
        except digests._NotPlain:
            continue
        assert digests._dumps(value) == digests._dumps_python(value)
        compared += 1
    assert compared > 1000


def test_model_signing_order_compares_path_components() -> None:
    paths = ["tokenizer.json", "tokenizer/vocab.json", "a-b", "a/b", "a.b/c", "a", "A/z", "é"]
    assert sorted(paths, key=digests.model_signing_order) == [
        "A/z", "a", "a/b", "a-b", "a.b/c", "tokenizer/vocab.json", "tokenizer.json", "é",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".git", True),
        (".git/objects/ab", True),
        (".gitattributes", True),
        (".github/workflows/ci.yml", True),
        (".gitignore", True),
        (".gitmodules", False),
        ("sub/.gitattributes", False),
        ("sub/.git/HEAD", False),
        (".gitattributes.bak", False),
    ],
)
def test_model_signing_ignores_the_top_level_git_paths(path: str, ignored: bool) -> None:
    assert digests.model_signing_ignores(path) is ignored


def test_model_signing_root_digest_of_nothing_is_the_empty_hash() -> None:
    assert digests.model_signing_root_digest([(".gitignore", "sha256:" + "00" * 32)]) == (
        "sha256:" + digests.sha256_hex(b"")
    )
