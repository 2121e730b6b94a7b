"""Rendering the package document: Jinja2 templates (app/templates/handoff) to one self-contained HTML
file, then WeasyPrint to PDF.

The environment uses `StrictUndefined`: a template that reaches for a field the record does not hold
fails the build with `validation_failed` instead of printing an empty cell. The HTML embeds its styles,
figures (PNG data URIs) and lineage drawing (inline SVG), and the PDF renderer is given a URL fetcher
that refuses anything but `data:` URLs, so neither output depends on, or reveals itself to, a network."""

from __future__ import annotations

import json
import math
import os
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from app.core.errors import ValidationFailed

TEMPLATE = "handoff.html.j2"


def fmt(value: Any, digits: int = 3, none: str = "not measured") -> str:
    """A figure as printed: numbers rounded, booleans as yes/no. None is said in words, by default "not
    measured": the registry stores None where a statistic is undefined (kappa with no overlapping items)."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "not finite" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def pct(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
        return f"{100 * float(value):.1f}%"
    return fmt(value)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


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
    env.filters["pct"] = pct
    env.filters["as_json"] = as_json
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
