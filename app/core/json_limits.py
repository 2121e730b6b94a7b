"""Request bodies as JSON the registry can store and digest: RFC 8259 JSON that is also I-JSON (RFC 7493)
within a depth limit, so that RFC 8785 canonical JSON (`app.core.digests`) can write every value.

Python's `json` module reads more than that: `NaN`, `Infinity` and `-Infinity` (and `1e999`, which
overflows to infinity) are not JSON; integers beyond 2**53 - 1 and lone surrogates (`"\\udc00"`) are
JSON that I-JSON excludes and canonical JSON cannot write; deep nesting is JSON that every recursive
step downstream (validation, digests, the database's JSON encoder) may fail on. Each is refused here,
before anything else reads the body, with a 422 that locates the value.

The checks walk the parsed value only where they could fail: a body without a `\\uD8..`-`\\uDF..`
escape holds no lone surrogate, one whose parser hooks saw no integer of 16 characters or more and no
non-finite number holds no number out of range, and one with at most `MAX_DEPTH` brackets is no
deeper than that. A registration's body usually passes on those checks alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from app.core.errors import ValidationFailed

# Arrays and objects may nest this deep, the body itself counting as the first level.
MAX_DEPTH = 64
# I-JSON (RFC 7493 section 2.2) and RFC 8785 section 3.2.2.3: integers exact in an IEEE double.
MAX_SAFE_INTEGER = 2**53 - 1

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(rb"[\[\]{}]")
# an integer of 16 characters or more may lie beyond MAX_SAFE_INTEGER (16 digits, or a sign and 15)
_SAFE_INT_CHARS = 15

PARSE_FAILED = "There was an error parsing the body"  # FastAPI's words for a body it cannot read
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels of arrays and objects"


class BodyUnreadable(ValidationFailed):
    """Bytes that are not UTF-8 (or JSON's other encodings), or unbalanced brackets nested deeper than
    the parser goes: what FastAPI answers 400 to."""

    status = 400


def loads_body(raw: bytes) -> Any:
    """Parse a JSON request body and refuse what the module docstring lists; errors are located under `body`.

    A syntax error is a 422 located at its byte offset, and bytes the parser cannot read a 400, both as
    FastAPI answers them, so that routes which read their body themselves answer as the others do."""
    numbers = _NumberScan()
    try:
        value = json.loads(
            raw, parse_int=numbers.parse_int, parse_float=numbers.parse_float, parse_constant=numbers.parse_constant
        )
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            "the request is not valid: 1 problem(s)", errors=[{"loc": ["body", exc.pos], "msg": "JSON decode error"}]
        ) from None
    except UnicodeDecodeError:
        raise BodyUnreadable(PARSE_FAILED) from None
    except RecursionError:
        # deeper than the parser goes (about a thousand levels, less the caller's stack): too deep for
        # the registry if the brackets balance; otherwise FastAPI's answer to text it cannot parse
        if (_bracket_depth(raw) or 0) > MAX_DEPTH:
            raise _too_deep(["body"]) from None
        raise BodyUnreadable(PARSE_FAILED) from None
    strings = _SURROGATE_ESCAPE.search(raw) is not None
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if strings or numbers.at_risk or deep:
        _check(value, ["body"], _Walk(strings=strings, numbers=numbers.at_risk))
    return value


class _NumberScan:
    """Parser hooks that note a number which may be out of range, so that only then the numbers are
    walked (scanning the raw bytes for long digit runs costs more than parsing them)."""

    def __init__(self) -> None:
        self.at_risk = False

    def parse_int(self, text: str) -> int:
        if len(text) <= _SAFE_INT_CHARS:
            return int(text)
        self.at_risk = True
        if len(text) <= _SAFE_INT_CHARS + 8:
            return int(text)
        # far out of range (and maybe beyond the digits `int` parses): a stand-in the walk refuses
        return -(MAX_SAFE_INTEGER + 1) if text.startswith("-") else MAX_SAFE_INTEGER + 1

    def parse_float(self, text: str) -> float:
        value = float(text)
        if math.isinf(value):  # 1e999
            self.at_risk = True
        return value

    def parse_constant(self, text: str) -> float:  # NaN, Infinity, -Infinity
        self.at_risk = True
        return float(text)


def _bracket_depth(raw: bytes) -> int | None:
    """The deepest nesting of brackets outside strings, without recursion; None if they do not balance."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', raw)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
            if depth < 0:
                return None
    return deepest if depth == 0 else None


def _too_deep(loc: list[Any]) -> ValidationFailed:
    return ValidationFailed(f"the request is not valid: {TOO_DEEP}", errors=[{"loc": loc, "msg": TOO_DEEP}])


def _check(value: Any, loc: list[Any], walk: _Walk) -> None:
    problem = walk.first_problem(value, loc, 1)
    if problem is not None:
        where, msg = problem
        raise ValidationFailed(f"the request is not valid: {msg}", errors=[{"loc": where, "msg": msg}])


class _Walk:
    """A recursive walk that stops at MAX_DEPTH + 1 levels, so it never recurses deeper than that. The
    location of a problem is built on the way back up, so values that pass cost no list of keys."""

    def __init__(self, *, strings: bool, numbers: bool) -> None:
        self.strings = strings
        self.numbers = numbers
        self.leaves = strings or numbers

    def first_problem(self, value: Any, loc: list[Any], level: int) -> tuple[list[Any], str] | None:
        problem = self._problem(value, level)
        if problem is None:
            return None
        reversed_path, msg = problem
        return [*loc, *reversed(reversed_path)], msg

    def _problem(self, value: Any, level: int) -> tuple[list[Any], str] | None:
        kind = type(value)
        if kind is dict or kind is list:
            if level > MAX_DEPTH:
                return [], TOO_DEEP
            items: Iterable[tuple[Any, Any]] = value.items() if kind is dict else enumerate(value)
            for key, item in items:
                if self.strings and type(key) is str and _lone_surrogate(key):
                    # the location is echoed in the answer, which must itself be UTF-8
                    return [key.encode("utf-8", "backslashreplace").decode()], "a key holds a lone surrogate"
                item_kind = type(item)
                if item_kind is dict or item_kind is list or self.leaves:
                    problem = self._problem(item, level + 1)
                    if problem is not None:
                        problem[0].append(key)
                        return problem
            return None
        if kind is str:
            if self.strings and _lone_surrogate(value):
                return [], "a lone surrogate is not text (I-JSON, RFC 7493)"
            return None
        if not self.numbers:
            return None
        if kind is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return [], f"integers are limited to +-{MAX_SAFE_INTEGER} (2**53 - 1; I-JSON, RFC 7493)"
        if kind is float and not math.isfinite(value):
            return [], "NaN and infinite numbers are not JSON (RFC 8259)"
        return None


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
