"""The shared spec builder: contract checks every importer relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.importers import ImportFormatError, prompt_id_for
from app.importers.spec import SpecBuilder, format_utc, parse_timestamp
from tests.importers.spec_checks import assert_valid


def _builder() -> SpecBuilder:
    return SpecBuilder(tool="t", annotator_pool="pool", source="usage", privacy_reviewed=False, complexity=None)


def test_prompt_ids_are_sha256_prefixes() -> None:
    assert prompt_id_for("hello") == "p-2cf24dba5fb0a30e"


def test_repeated_judgement_keeps_the_last() -> None:
    builder = _builder()
    pid = builder.prompt("q")
    builder.item(pair_id="p1", prompt_id=pid, response_a="x", response_b="y", annotator="ann", choice="a")
    builder.item(pair_id="p1", prompt_id=pid, response_a="x", response_b="y", annotator="other", choice="a")
    builder.item(pair_id="p1", prompt_id=pid, response_a="x", response_b="y", annotator="ann", choice="tie")
    result = builder.build()
    assert_valid(result)
    assert [(i["annotator"], i["choice"]) for i in result.items] == [("other", "a"), ("ann", "tie")]
    assert any(note.startswith("1 repeated (pair_id, annotator)") for note in result.losses)


def test_contract_violations_are_refused() -> None:
    builder = _builder()
    pid = builder.prompt("q", prompt_id="q1")
    with pytest.raises(ImportFormatError):
        builder.prompt("another text", prompt_id="q1")
    with pytest.raises(ValueError):
        builder.item(pair_id="p", prompt_id="nope", response_a="x", response_b="y", annotator="a", choice="a")
    with pytest.raises(ValueError):
        builder.item(
            pair_id="p",
            prompt_id=pid,
            response_a="x",
            response_b="y",
            annotator="a",
            choice="A",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        SpecBuilder(tool="t", annotator_pool="p", source="web", privacy_reviewed=False, complexity=None)


def test_timestamps_are_utc_whole_seconds() -> None:
    moment, naive = parse_timestamp("2026-11-16T10:00:00.9+01:00")
    assert not naive
    assert format_utc(moment) == "2026-11-16T09:00:00Z"
    moment, naive = parse_timestamp("2026-11-16 09:00:00")
    assert naive
    assert moment == datetime(2026, 11, 16, 9, tzinfo=UTC)
    assert parse_timestamp(None) == (None, False)
    with pytest.raises(ImportFormatError):
        parse_timestamp("yesterday")


def test_build_reports_what_registration_will_still_need() -> None:
    builder = _builder()
    pid = builder.prompt("q")
    builder.item(pair_id="p", prompt_id=pid, response_a="x", response_b="y", annotator="a", choice="b")
    builder.assisted_by(None)
    result = builder.build()
    assert result.batch_meta == {
        "annotator_pool": "pool",
        "tool": "t",
        "collected_from": None,
        "collected_to": None,
        "ai_assisted": True,
    }
    losses = "\n".join(result.losses)
    assert "collected_from and collected_to must be set by hand" in losses
    assert "ai_model must be set by hand" in losses
    assert "not privacy-reviewed" in losses
