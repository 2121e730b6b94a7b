"""`loads_body` takes the JSON that canonical JSON (RFC 8785) can write, and refuses the rest with a
located 4xx: whatever it accepts digests without an error."""

from __future__ import annotations

import json
import random

import pytest

from app.core.digests import canonical_json
from app.core.errors import AppError
from app.core.json_limits import MAX_DEPTH, MAX_SAFE_INTEGER, loads_body

# JSON texts, some of which Python's parser reads but canonical JSON cannot write
ATOMS = [
    "0",
    "-1",
    "1.5",
    "1e300",
    "-0.0",
    str(MAX_SAFE_INTEGER),
    str(-MAX_SAFE_INTEGER),
    str(MAX_SAFE_INTEGER + 1),
    str(-MAX_SAFE_INTEGER - 1),
    str(2**70),
    "9" * 5000,
    "1e999",
    "-1e999",
    "1" + "0" * 400 + ".5",
    "NaN",
    "Infinity",
    "-Infinity",
    '"plain"',
    '"\\ud83d\\ude00"',
    '"\\udc00"',
    '"a\\ud800"',
    '"\\ude00\\ud83d"',
    '"\\\\udc00"',  # an escaped backslash, then the text udc00: no surrogate at all
    "true",
    "null",
]


def _random_text(rng: random.Random, depth: int = 0) -> str:
    pick = rng.random()
    if depth < 80 and pick < 0.3:
        return "[" + ",".join(_random_text(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if depth < 80 and pick < 0.6:
        keys = [rng.choice(['"k"', '"\\udc01"', '"\\ud83d\\ude00"', '"x"']) for _ in range(rng.randint(0, 3))]
        return "{" + ",".join(f"{k}:{_random_text(rng, depth + 1)}" for k in keys) + "}"
    return rng.choice(ATOMS)


def test_what_is_accepted_digests_and_what_is_refused_is_a_located_4xx() -> None:
    rng = random.Random(7493)
    accepted = refused = 0
    for _ in range(3000):
        raw = _random_text(rng).encode()
        try:
            value = loads_body(raw)
        except AppError as exc:
            assert exc.status == 422 and exc.errors and exc.errors[0]["loc"][0] == "body", raw[:200]
            json.dumps(exc.to_problem(), ensure_ascii=False).encode()  # the answer itself is UTF-8
            refused += 1
            continue
        canonical_json(value)
        accepted += 1
    assert accepted > 300 and refused > 300


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ('{"a": [1, 9007199254740992]}', ["body", "a", 1]),
        ('{"a": {"b": -9007199254740992}}', ["body", "a", "b"]),
        ('{"a": NaN}', ["body", "a"]),
        ('{"a": [Infinity]}', ["body", "a", 0]),
        ('{"a": -Infinity}', ["body", "a"]),
        ('{"a": 1e999}', ["body", "a"]),
        ('{"name": "x\\udc00"}', ["body", "name"]),
        ('{"spec": {"\\udc00": 1}}', ["body", "spec", "\\udc00"]),
    ],
)
def test_each_refusal_is_located(text: str, loc: list[object]) -> None:
    with pytest.raises(AppError) as refused:
        loads_body(text.encode())
    assert refused.value.status == 422 and refused.value.code == "validation_failed"
    assert refused.value.errors == [{"loc": loc, "msg": refused.value.errors[0]["msg"]}]


def test_nesting_is_limited_to_max_depth_levels() -> None:
    assert loads_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(AppError) as deeper:
        loads_body(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert deeper.value.status == 422
    assert deeper.value.errors is not None and len(deeper.value.errors[0]["loc"]) == MAX_DEPTH + 1


@pytest.mark.parametrize("levels", [400, 900])
def test_deep_nesting_the_parser_reads_is_a_located_422(levels: int) -> None:
    with pytest.raises(AppError) as refused:
        loads_body(b'{"spec": {"metadata": ' + b"[" * levels + b"]" * levels + b"}}")
    assert refused.value.status == 422
    assert refused.value.errors is not None and refused.value.errors[0]["loc"][:3] == ["body", "spec", "metadata"]


@pytest.mark.parametrize("levels", [989, 5000, 200_000])
def test_nesting_deeper_than_the_parser_goes_is_still_a_422(levels: int) -> None:
    text = b'{"spec": {"metadata": {"s": "]]}", "m": ' + b"[" * levels + b"]" * levels + b"}}}"
    with pytest.raises(AppError) as refused:
        loads_body(text)
    assert refused.value.status == 422 and refused.value.errors == [
        {"loc": ["body"], "msg": refused.value.errors[0]["msg"]}
    ]


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a": "\xff"}'])
def test_what_the_parser_cannot_read_is_fastapis_400(raw: bytes) -> None:
    with pytest.raises(AppError) as refused:
        loads_body(raw)
    assert refused.value.status == 400 and refused.value.errors is None


def test_a_syntax_error_is_located_at_its_offset_as_fastapi_does() -> None:
    with pytest.raises(AppError) as refused:
        loads_body(b'{"spec": ')
    assert refused.value.status == 422 and refused.value.errors == [{"loc": ["body", 9], "msg": "JSON decode error"}]
