"""Rendering the package document: Jinja2 templates (app/templates/handoff) to one self-contained HTML
file, then WeasyPrint to PDF.

The environment uses `StrictUndefined`: a template that reaches for a field the record does not hold
fails the build with `validation_failed` instead of printing an empty cell. The HTML embeds its styles,
figures (PNG data URIs) and lineage drawing (inline SVG), and the PDF renderer is given a URL fetcher
that refuses anything but `data:` URLs, so neither output depends on, or reveals itself to, a network.

Every figure a template prints goes through one filter, `fmt`: numbers to four significant figures,
fractions as percentages where the template says so, timestamps to the second in UTC. Structured
values are printed as key/value rows (`entries`), registered markdown (the criteria playbook) through
markdown-it-py with raw HTML, images and links turned off (`markdown`)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from app.core.errors import ValidationFailed

TEMPLATE = "handoff.html.j2"
SIGNIFICANT = 4
SHORT_HEX = 12
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def significant(value: float, digits: int = SIGNIFICANT) -> str:
    """`value` rounded to `digits` significant figures, without trailing zeros, in positional notation
    between 1e-4 and 1e6 and in scientific notation outside it (1e-05, 2.5e+07)."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if not -4 <= exponent < 6:
        mantissa, _, power = f"{value:.{digits - 1}e}".partition("e")
        return f"{_trim(mantissa)}e{power}"
    decimals = digits - 1 - exponent
    rounded = round(value, decimals)
    return _trim(f"{rounded:.{max(decimals, 0)}f}")


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def _timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt(value: Any, unit: str = "", none: str = "not measured") -> str:
    """A value as printed. Numbers: integers as they are, other numbers to four significant figures;
    `unit="%"` prints a fraction as a percentage (0.3472 -> 34.72%). Booleans as yes/no; timestamps
    (datetimes and ISO 8601 strings) to the second in UTC; None in words, by default "not measured": the
    registry stores None where a statistic is undefined (kappa with no overlapping items)."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return "not finite"
        if unit == "%":
            return significant(100 * value) + "%"
        return str(value) if isinstance(value, int) else significant(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, str) and TIMESTAMP.match(value):
        return _timestamp(datetime.fromisoformat(value.replace("Z", "+00:00")))
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, unit, none) for v in value) if value else "none"
    return str(value)


def entries(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A structured value as (key, scalar) rows: nested mappings as dotted keys (`drift.batches`), lists of
    scalars kept whole (`fmt` joins them), lists of mappings by index (`steps[0].name`)."""
    if isinstance(value, dict):
        if not value and prefix:
            yield prefix, "none"
        for key in sorted(value, key=str):
            yield from entries(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, item in enumerate(value):
            yield from entries(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def short(digest: Any) -> str:
    """A digest cut to its first twelve hex digits (as `git` shortens commits); the full value is in the
    package's records and manifest."""
    text = str(digest)
    hex_part = text.partition(":")[2] or text
    return hex_part[:SHORT_HEX] + ("…" if len(hex_part) > SHORT_HEX else "")


def _heading(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    # the document's own h1-h3 frame the playbook: its headings start at h4
    level = min(int(tokens[idx].tag[1]) + 3, 6)
    return f"<h{level}>" if tokens[idx].nesting == 1 else f"</h{level}>\n"


def _text(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return str(escape(tokens[idx].content))


def _link_open(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    # a printed package follows no link: the text is kept and the address printed after it
    env.setdefault("links", []).append(tokens[idx].attrGet("href") or "")
    return ""


def _link_close(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f" (<code>{escape(env['links'].pop())}</code>)"


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    md.add_render_rule("heading_open", _heading)
    md.add_render_rule("heading_close", _heading)
    md.add_render_rule("text", _text)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    return md


def markdown(text: str) -> Markup:
    """CommonMark to HTML with raw HTML passed through as text, images left as their markdown source and
    links as text followed by their address: nothing in the output is fetched or followed."""
    return Markup(_markdown().render(text, {}))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("app", "templates/handoff"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["entries"] = entries
    env.filters["short"] = short
    env.filters["markdown"] = markdown
    return env


def render_html(context: dict[str, Any]) -> str:
    try:
        return environment().get_template(TEMPLATE).render(**context, svg=Markup(context["lineage_svg"]))
    except jinja2.UndefinedError as exc:
        raise ValidationFailed(
            f"the handoff package cannot be rendered: a required field is missing ({exc.message})",
            errors=[{"loc": ["template", TEMPLATE], "msg": str(exc.message)}],
        ) from None


def render_pdf(html: str) -> bytes:
    """The PDF of the rendered HTML. WeasyPrint is imported here, not at the top: loading it (Pango
    through cffi) costs most of a second, which every process importing the app would otherwise pay."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):  # type: ignore[misc]
        """Only `data:` URLs: a package never fetches anything while it renders."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"the handoff renderer fetches nothing but data: URLs, not {url[:80]}")
            return super().fetch(url, headers)

    # WeasyPrint embeds font subsets made by fontTools, which stamps each subset's `head.modified` with
    # the current time unless SOURCE_DATE_EPOCH is set (the reproducible-builds convention); without a
    # fixed stamp, two renders of the same package a second apart differ in their font bytes.
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=DataOnlyFetcher()).write_pdf()
    return pdf
