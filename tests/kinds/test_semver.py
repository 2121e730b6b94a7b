"""Semver parsing, ordering, sort keys and bumps."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationFailed
from app.kinds.semver import BumpLevel, Semver


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0", Semver(0, 0, 0)), ("1.4.2", Semver(1, 4, 2)), ("10.20.30", Semver(10, 20, 30))],
)
def test_parse_accepts_strict_core_versions(text: str, expected: Semver) -> None:
    assert Semver.parse(text) == expected
    assert str(Semver.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "v1.2.3",
        "-1.2.3",
        "1.2.3-rc.1",
        "1.2.3+build",
        " 1.2.3",
        "1.2.3\n",
        "1..3",
        "a.b.c",
        "\u0661.0.0",  # Arabic-Indic digit one: a digit to str.isdigit, not to semver
    ],
)
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Semver.parse(text)
    assert caught.value.code == "validation_failed"


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Semver.parse(123)  # type: ignore[arg-type]
    assert caught.value.code == "validation_failed"


@pytest.mark.parametrize(("major", "minor", "patch"), [(-1, 0, 0), (0, -1, 0), (0, 0, -1)])
def test_negative_components_refused(major: int, minor: int, patch: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Semver(major, minor, patch)
    assert caught.value.code == "validation_failed"


def test_ordering_is_numeric_not_textual() -> None:
    assert Semver.parse("1.10.0") > Semver.parse("1.9.0")
    assert Semver.parse("2.0.0") > Semver.parse("1.99.99")
    assert Semver.parse("1.4.3") > Semver.parse("1.4.2")


def test_sort_key_is_zero_padded() -> None:
    assert Semver(1, 4, 2).sort_key() == "000001.000004.000002"


def test_sort_key_string_order_equals_semver_order() -> None:
    versions = [Semver.parse(text) for text in ["1.10.0", "0.0.1", "1.9.9", "10.0.0", "2.0.0", "1.10.1"]]
    assert sorted(versions, key=Semver.sort_key) == sorted(versions)


def test_sort_key_accepts_largest_component() -> None:
    assert Semver(999999, 0, 0).sort_key() == "999999.000000.000000"


@pytest.mark.parametrize("text", ["1000000.0.0", "0.1000000.0", "0.0.1000000"])
def test_components_above_six_digits_refused(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Semver.parse(text)
    assert caught.value.code == "validation_failed"


def test_bump_past_the_largest_component_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Semver(1, 2, 999999).bump("patch")
    assert caught.value.code == "validation_failed"


@pytest.mark.parametrize(("level", "expected"), [("major", "2.0.0"), ("minor", "1.5.0"), ("patch", "1.4.3")])
def test_bump_gives_minimum_next_version(level: BumpLevel, expected: str) -> None:
    assert str(Semver.parse("1.4.2").bump(level)) == expected
