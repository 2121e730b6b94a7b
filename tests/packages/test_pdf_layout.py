"""The handoff PDF as a reader sees it: a realistic package rendered, its pages converted to PNG with
poppler's `pdftoppm` (left in test-artifacts/handoff-pages/ for a person to look at), and the word
positions `pdftotext -bbox-layout` reports checked: no word box overlaps another, and every word lies
inside the page's content width (nothing runs into the margin or off the page).

poppler-utils missing: skipped, or failed when CI is set (tests.support.services.missing_service)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.packages import plots
from app.packages.evidence import RewardSamples
from app.packages.render import entries, environment, fmt, markdown, short
from app.records.models import Record
from app.state import AppState
from tests.conftest import World
from tests.factories import criteria_body
from tests.packages.chain import HOSTILE, PackageChain
from tests.support.services import missing_service

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "test-artifacts" / "handoff-pages"
XHTML = "{http://www.w3.org/1999/xhtml}"
MM = 72 / 25.4
MARGIN_X = 14 * MM  # the @page side margins of app/templates/handoff/style.css
SLACK = 0.75  # points: glyph boxes of neighbouring words and lines may touch
PLAYBOOK = """# Playbook

Read **both** answers in full before choosing; the *first* shown is not the better one.

## Steps

1. Check every factual claim against the cited source.
2. Prefer the answer that does what was asked, then the shorter one.
   - a disqualifier (`hallucinated_citation`) decides alone
   - ties only when neither answer is better on any dimension

See [the rubric](https://wiki.example/rubric) for worked cases.
"""


@dataclass(frozen=True)
class Word:
    page: int
    line: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


def _tools() -> None:
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            missing_service(f"{tool} (poppler-utils) is not installed: make system-packages installs it")


def words_of(pdf: Path) -> tuple[list[Word], list[tuple[float, float]]]:
    """Every word's box and every page's size (points), from `pdftotext -bbox-layout`."""
    out = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, check=True).stdout
    words: list[Word] = []
    sizes: list[tuple[float, float]] = []
    line_number = 0
    for p, page in enumerate(ET.fromstring(out).iter(f"{XHTML}page")):
        sizes.append((float(page.attrib["width"]), float(page.attrib["height"])))
        for line in page.iter(f"{XHTML}line"):
            line_number += 1
            for word in line.iter(f"{XHTML}word"):
                box = (float(word.attrib[k]) for k in ("xMin", "yMin", "xMax", "yMax"))
                words.append(Word(p + 1, line_number, word.text or "", *box))
    return words, sizes


def overlaps(words: list[Word]) -> list[tuple[Word, Word]]:
    """Pairs of words on one page whose boxes intersect by more than SLACK in both directions."""
    found = []
    by_page: dict[int, list[Word]] = {}
    for word in words:
        by_page.setdefault(word.page, []).append(word)
    for page in by_page.values():
        page.sort(key=lambda w: w.y0)
        for i, a in enumerate(page):
            for b in page[i + 1 :]:
                if b.y0 >= a.y1 - SLACK:
                    break
                if min(a.x1, b.x1) - max(a.x0, b.x0) > SLACK and min(a.y1, b.y1) - max(a.y0, b.y0) > SLACK:
                    found.append((a, b))
    return found


def outside(words: list[Word], sizes: list[tuple[float, float]]) -> list[Word]:
    """Words that leave the page, or run into its side margins."""
    return [
        w
        for w in words
        if w.x0 < MARGIN_X - SLACK
        or w.x1 > sizes[w.page - 1][0] - MARGIN_X + SLACK
        or w.y0 < -SLACK
        or w.y1 > sizes[w.page - 1][1] + SLACK
    ]


def inked_margins(png: Path) -> bool:
    """Whether anything (a table border, a figure) is drawn in the side margins of a rendered page."""
    with Image.open(png) as image:
        grey = image.convert("L")
        width, height = grey.size
        margin = int(width * (MARGIN_X - 2) / (210 * MM))
        for box in ((0, 0, margin, height), (width - margin, 0, width, height)):
            if any(grey.crop(box).histogram()[:200]):  # a pixel darker than light grey
                return True
    return False


def pages_of(pdf: Path, into: Path, dpi: int = 60) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(into / "page")], check=True)
    return sorted(into.glob("page-*.png"))


@dataclass(frozen=True)
class Rendered:
    pdf: Path
    html: str


@pytest.fixture(scope="module")
def rendered(sqlite_stack: AppState, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The package of the package tests' chain with a markdown playbook, and a late evaluation whose
    summary has many long-named figures at full float precision, as a training run reports them."""
    _tools()
    with TestClient(create_app(sqlite_stack.settings, state=sqlite_stack), raise_server_exceptions=False) as client:
        chain = PackageChain(World(sqlite_stack, client), criteria=criteria_body(playbook=PLAYBOOK + HOSTILE))
        summary = {f"metric_{i}/mean_over_the_whole_window": 1 / (i + 3) for i in range(8)}
        chain.ok(
            chain.trainer,
            "evaluations",
            {"name": "late-kl", "target": {"id": chain.series[2]["id"]}, "spec": {"type": "kl", "summary": summary}},
        )
        response = chain.build(chain.approved())
        assert response.status_code == 201, response.text
        archive = chain.download(response.json())
    path = tmp_path_factory.mktemp("pdf") / "handoff.pdf"
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        path.write_bytes(opened.read("handoff.pdf"))
        html = opened.read("handoff.html").decode()
    return Rendered(path, html)


def test_no_word_overlaps_another_or_leaves_the_page(rendered: Rendered) -> None:
    words, sizes = words_of(rendered.pdf)
    assert len(sizes) > 3 and len(words) > 500
    clashes = overlaps(words)
    assert not clashes, [(a.page, a.text, b.text) for a, b in clashes[:20]]
    strays = outside(words, sizes)
    assert not strays, [(w.page, w.text, round(w.x0), round(w.x1)) for w in strays[:20]]


def test_pages_render_with_nothing_drawn_in_the_margins(rendered: Rendered) -> None:
    pages = pages_of(rendered.pdf, PAGES)
    shutil.copyfile(rendered.pdf, PAGES / "handoff.pdf")
    assert pages
    inked = [p.name for p in pages if inked_margins(p)]
    assert not inked, inked


def test_playbook_markdown_is_rendered_and_nothing_registered_is_interpreted(rendered: Rendered) -> None:
    html = rendered.html
    assert (
        "<h4>Playbook</h4>" in html
        and "<h5>Steps</h5>" in html
        and "<strong>both</strong>" in html
        and "<em>first</em>" in html
    )
    assert "<li>Check every factual claim against the cited source.</li>" in html
    assert "<code>hallucinated_citation</code>" in html
    # a link is printed as its text and address, never followed; raw HTML stays text
    assert "the rubric (<code>https://wiki.example/rubric</code>)" in html and "<a " not in html
    assert "&lt;img src=&#39;https://evil.example/x.png&#39;&gt;" in html and "<img src='https" not in html


def test_figures_are_rounded_and_tabulated_not_printed_as_json(rendered: Rendered) -> None:
    html = rendered.html
    assert "{&#34;" not in html and "[&#34;" not in html, "a structured value printed as JSON"
    assert "0.3333" in html and "0.33333" not in html
    assert "34.72%" in html  # a batch's share that chose the longer response
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", html), "a timestamp printed to the microsecond"


@pytest.mark.parametrize(
    ("value", "unit", "printed"),
    [
        (0.333333333, "", "0.3333"),
        (2.1666666666666665, "", "2.167"),
        (12345.678, "", "12350"),
        (1e-05, "", "1e-05"),
        (0.05, "", "0.05"),
        (-0.037037037037037035, "", "-0.03704"),
        (170, "", "170"),
        (0.3472222, "%", "34.72%"),
        (0.65, "%", "65%"),
        (1, "%", "100%"),
        (None, "", "not measured"),
        (None, "%", "not measured"),
        (float("nan"), "", "not finite"),
        (True, "", "yes"),
        ([0.4, 0.6], "", "0.4, 0.6"),
        ("2026-12-08T00:02:11.617616Z", "", "2026-12-08 00:02:11 UTC"),
        ("2026-12-08T01:02:11+01:00", "", "2026-12-08 00:02:11 UTC"),
        ("prefer the shorter", "", "prefer the shorter"),
    ],
)
def test_one_filter_rounds_every_figure(value: object, unit: str, printed: str) -> None:
    assert fmt(value, unit) == printed


def test_structured_values_become_rows() -> None:
    value = {"drift": {"batches": 1, "kappa": None}, "band": [0.4, 0.6], "steps": [{"name": "a"}], "empty": {}}
    assert list(entries(value)) == [
        ("band", [0.4, 0.6]),
        ("drift.batches", 1),
        ("drift.kappa", None),
        ("empty", "none"),
        ("steps[0].name", "a"),
    ]
    assert short("sha256:" + "ab" * 32) == "abababababab…"


def test_markdown_passes_no_html_image_or_link_through() -> None:
    out = str(markdown("# T\n<b>x</b> ![p](https://e.example/p.png) [l](javascript:alert(1)) `<i>`"))
    assert out.startswith("<h4>T</h4>")
    assert "<b>" not in out and "&lt;b&gt;x&lt;/b&gt;" in out
    assert "<img" not in out and "<a " not in out and "src=" not in out and "href=" not in out
    assert "<code>&lt;i&gt;</code>" in out


def _batch(kappa: float, to: str) -> Record:
    qc = {"cohen_kappa": {"mean": kappa}, "krippendorff_alpha": kappa, "gold_accuracy": {"overall": None}}
    spec = {"collected_from": "2026-11-01", "collected_to": to}
    return Record(id=f"b-{to}", kind="annotation_batch", name="batch", version="1", spec=spec, derived={"qc": qc})


def _checkpoint(step: int, metrics: dict[str, float]) -> Record:
    return Record(
        id=f"c-{step}", kind="policy_checkpoint", name="p", version=str(step), spec={"step": step, "metrics": metrics}
    )


def test_a_plot_that_cannot_say_anything_is_replaced_by_a_sentence() -> None:
    one = plots.agreement_over_time([_batch(0.7, "2026-11-20")], 0.6, 0.4)
    assert isinstance(one, plots.NotDrawn) and "needs two or more" in one.reason
    assert isinstance(
        plots.agreement_over_time([_batch(0.7, "2026-11-20"), _batch(0.6, "2026-11-27")], 0.6, 0.4), plots.Plot
    )

    evaluation = Record(id="e", kind="evaluation", name="scores", version="1")
    target = Record(id="r", kind="reward_checkpoint", name="rm", version="1")
    same = RewardSamples(evaluation, target, [0.5] * 10, [20] * 10)
    flat = plots.reward_distribution([same])
    assert isinstance(flat, plots.NotDrawn) and "10 score(s), all 0.5" in flat.reason
    assert isinstance(plots.length_vs_reward_samples([same]), plots.NotDrawn)

    single = [_checkpoint(100, {"mean_reward": 0.4})]
    assert isinstance(plots.checkpoint_series(single, single[0], ["mean_reward"]), plots.NotDrawn)
    series = [_checkpoint(50, {"mean_reward": 0.3, "kl": 0.05}), _checkpoint(100, {"mean_reward": 0.4, "kl": 0.05})]
    drawn = plots.checkpoint_series(series, series[1], ["mean_reward", "kl"])
    assert isinstance(drawn, plots.Plot) and "Constant throughout, so not drawn: kl = 0.05" in drawn.caption
    constant = plots.checkpoint_series(series, series[1], ["kl"])
    assert isinstance(constant, plots.NotDrawn) and "kl = 0.05" in constant.reason


def test_a_measure_no_batch_has_is_left_out_of_the_legend() -> None:
    drawn = plots.qc_per_batch([_batch(0.7, "2026-11-20")])
    assert isinstance(drawn, plots.Plot) and "so not drawn: gold accuracy" in drawn.caption


def test_the_document_says_why_a_figure_is_missing() -> None:
    macros = environment().get_template("macros.html.j2").module
    reason = {"title": "Agreement over time", "reason": "1 batch(es) with a measured agreement figure"}
    html = str(macros.plot({"agreement_over_time": reason}, "agreement_over_time"))  # type: ignore[attr-defined]
    assert 'id="plot-agreement_over_time"' in html and "not drawn, because 1 batch(es)" in html and "<img" not in html
