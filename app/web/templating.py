"""The one Jinja2 environment of the web pages: templates under app/templates (package data), always
autoescaped, strict about undefined names so a template typo fails a test instead of printing nothing."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def when(value: datetime | str | None) -> str:
    """A UTC timestamp to the minute, the way an audit table reads it."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def short_digest(digest: str, keep: int = 12) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:keep]}…" if hexpart else digest[:keep]


def filesize(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in UNITS:
        if value < 1024 or unit == UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def number(value: Any, digits: int = 4) -> str:
    """Figures for people: floats rounded, None as an em dash, everything else as is."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("app", "templates"),
        autoescape=select_autoescape(("html", "svg", "xml")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pretty_json=pretty_json, when=when, short_digest=short_digest, filesize=filesize, number=number)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
