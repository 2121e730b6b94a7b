"""Each page renders what its readers need, from the same services as the API, and nothing of a
project the principal holds no role in."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import criteria_body, reranked_dimensions
from tests.packages.chain import PackageChain
from tests.web.support import (
    Site,
    approved_chain,
    batch_project,
    browser,
    criteria_project,
    end_run,
    log_metrics,
    policy_run,
    queued_run,
    register_checkpoint,
    sign_in,
    start_run,
)


def signed_in(site: Site) -> TestClient:
    client = browser(site.world)
    sign_in(client, site.viewer.token)
    return client


def record_links(html: str) -> set[str]:
    return set(re.findall(r'href="/web/records/([0-9a-f-]{36})"', html))


def test_home_lists_the_projects_with_a_role(site: Site) -> None:
    other = site.world.project()
    page = signed_in(site).get("/web/")
    assert page.status_code == 200
    assert f'href="/web/projects/{site.project}"' in page.text and "viewer" in page.text
    assert other not in page.text


def test_project_overview_groups_latest_records_by_kind(site: Site) -> None:
    page = signed_in(site).get(f"/web/projects/{site.project}")
    assert page.status_code == 200
    html = page.text
    for kind in ("criteria", "annotation_batch", "preference_dataset", "policy_checkpoint", "deployment"):
        assert f'id="kind-{kind}"' in html, kind
    # the policy series has three versions: only the latest is listed, with the count
    assert f'href="/web/records/{site.chain.series[-1]["id"]}"' in html
    assert f'href="/web/records/{site.chain.series[0]["id"]}"' not in html
    assert re.search(r'<span class="badge gate-(pass|warn)">', html)
    assert "status-approved" in html
    assert f'href="/web/runs/{site.run_id}"' in html and "run-queued" in html


def test_record_page_shows_envelope_spec_derived_blobs_and_neighbours(site: Site) -> None:
    client = signed_in(site)
    checkpoint = site.chain.series[1]
    page = client.get(f"/web/records/{checkpoint['id']}")
    assert page.status_code == 200
    html = page.text
    assert checkpoint["digest"] in html and "kl_coefficient" in html and "root_digest" in html
    links = record_links(html)
    assert site.chain.reward["id"] in links and site.chain.base["id"] in links  # parents
    assert site.deployment["id"] in links and {e["id"] for e in site.chain.evaluations} <= links  # children
    blob = checkpoint["spec"]["files"][0]
    download = client.get(f"/web/records/{checkpoint['id']}/blobs/{blob['digest']}")
    assert download.status_code == 200
    assert download.content == site.chain.trainer.get(f"/v1/blobs/{blob['digest']}").content
    assert 'filename="config.json"' in download.headers["content-disposition"]
    # a blob the record does not reference is not served through it
    other = site.chain.series[0]["spec"]["files"][0]["digest"]
    assert client.get(f"/web/records/{checkpoint['id']}/blobs/{other}").status_code == 404


def test_deployment_page_shows_the_approval_and_its_package(site: Site) -> None:
    page = signed_in(site).get(f"/web/records/{site.deployment['id']}")
    html = page.text
    assert "Approval and decisions" in html and "status-approved" in html
    assert site.chain.approver.principal in html and "reviewed" in html
    assert "step 150 gains reward by length" in html  # the justification
    assert "human_preference" in html and "adversarial" in html
    assert f'href="/web/records/{site.package_id}/package/download"' in html


def test_record_json_is_the_api_envelope(site: Site) -> None:
    body = signed_in(site).get(f"/web/records/{site.deployment['id']}/record.json").json()
    assert body == site.viewer.get(f"/v1/records/{site.deployment['id']}").json()


def test_batch_page_shows_its_qc(site: Site) -> None:
    batch = site.chain.batches[0]
    html = signed_in(site).get(f"/web/records/{batch['id']}").text
    assert "Annotation QC" in html and "Krippendorff" in html
    assert f'class="badge gate-{batch["derived"]["qc"]["gate"]}"' in html


def test_lineage_is_an_inline_svg_of_links_up_to_the_criteria(site: Site) -> None:
    page = signed_in(site).get(f"/web/records/{site.deployment['id']}/lineage")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    trace = site.viewer.get(f"/v1/records/{site.deployment['id']}/lineage").json()
    assert {n["id"] for n in trace["nodes"]} == set(re.findall(r'data-id="([0-9a-f-]{36})"', svg))
    assert f'href="/web/records/{site.chain.criteria["id"]}"' in svg
    assert svg.count('<path class="edge') == len(trace["edges"])
    assert 'class="node kind-deployment status-approved root"' in svg


def test_downstream_lineage_of_the_criteria_reaches_the_deployment(site: Site) -> None:
    page = signed_in(site).get(f"/web/records/{site.chain.criteria['id']}/lineage", params={"direction": "downstream"})
    assert page.status_code == 200 and f'data-id="{site.deployment["id"]}"' in page.text


def test_revocation_and_a_new_criteria_major_are_flagged(site: Site) -> None:
    chain, deployment = approved_chain(site.world)
    viewer = site.world.member(chain.project, "viewer")
    chain.approver.post(f"/v1/records/{chain.batches[0]['id']}/revoke", json={"reason": "fabricated annotations"})
    client = browser(site.world)
    sign_in(client, viewer.token)
    overview = client.get(f"/web/projects/{chain.project}").text
    assert "row-quarantined" in overview and 'class="badge quarantined"' in overview
    record = client.get(f"/web/records/{deployment['id']}").text
    assert "approved but quarantined" in record and "was revoked" in record
    svg = client.get(f"/web/records/{deployment['id']}/lineage").text
    assert re.search(r'class="node kind-annotation-batch status-revoked quarantined"', svg)

    chain.admin.post(chain.url("criteria"), json=criteria_body("2.0.0", dimensions=reranked_dimensions()))
    svg = client.get(f"/web/records/{chain.dataset['id']}/lineage").text
    assert re.search(r'class="node kind-criteria status-registered stale"', svg)


def test_run_page_refreshes_while_the_run_is_live(site: Site) -> None:
    chain: PackageChain = site.chain
    state = site.world.state
    run_id = queued_run(chain)
    client = signed_in(site)
    page = client.get(f"/web/runs/{run_id}")
    assert page.status_code == 200
    assert 'src="/web/static/run.js"' in page.text and 'data-live="yes"' in page.text
    assert f'href="/web/records/{chain.dataset["id"]}"' in page.text  # inputs link to their records
    first = client.get(f"/web/runs/{run_id}/live.json", params={"seen": 1}).json()
    assert first["status"] == "queued" and first["live"] and "html" not in first

    start_run(state, run_id)
    log_metrics(state, run_id, [{"step": s, "loss": 1.0 / s, "rewards/accuracies": 0.5 + s / 10} for s in (1, 2, 3)])
    live = client.get(f"/web/runs/{run_id}/live.json", params={"seen": first["seq"]}).json()
    assert live["status"] == "running" and live["seq"] > first["seq"]
    assert "rewards/accuracies" in live["html"] and 'id="chart-loss"' in live["html"] and "run-running" in live["html"]

    end_run(state, run_id)
    done = client.get(f"/web/runs/{run_id}/live.json", params={"seen": live["seq"]}).json()
    assert done["status"] == "succeeded" and not done["live"]
    final = client.get(f"/web/runs/{run_id}")
    assert 'data-live="no"' in final.text and "run.js" not in final.text and "0.3333" in final.text


def test_package_preview_and_download(site: Site) -> None:
    client = signed_in(site)
    preview = client.get(f"/web/records/{site.package_id}/package/handoff.html")
    assert preview.status_code == 200 and preview.headers["content-type"].startswith("text/html")
    assert preview.headers["content-security-policy"].startswith("sandbox")
    download = client.get(f"/web/records/{site.package_id}/package/download")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert "attachment" in download.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert archive.read("handoff.html") == preview.content
    assert "assistant-quality" in preview.text and site.deployment["id"] in preview.text
    api = site.viewer.get(site.chain.url(f"handoff-packages/prod-v{site.deployment['version']}/1/download"))
    assert api.status_code == 200 and api.content == download.content
    # a record that is not a package has neither
    assert client.get(f"/web/records/{site.deployment['id']}/package/download").status_code == 404


def test_another_project_is_not_found_everywhere(site: Site) -> None:
    outsider = site.world.member(site.world.project(), "admin")
    client = browser(site.world)
    sign_in(client, outsider.token)
    blob = site.chain.series[1]["spec"]["files"][0]["digest"]
    paths = [
        f"/web/projects/{site.project}",
        f"/web/records/{site.deployment['id']}",
        f"/web/records/{site.deployment['id']}/lineage",
        f"/web/records/{site.chain.series[1]['id']}/blobs/{blob}",
        f"/web/records/{site.package_id}/package/handoff.html",
        f"/web/records/{site.package_id}/package/download",
        f"/web/runs/{site.run_id}",
        "/web/projects/no-such-project",
        "/web/records/00000000-0000-7000-8000-000000000000",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "not_found" in response.text and response.headers["content-type"].startswith("text/html")
    assert client.get(f"/web/records/{site.deployment['id']}/record.json").json()["code"] == "not_found"
    assert client.get(f"/web/runs/{site.run_id}/live.json").json()["code"] == "not_found"


def test_global_admin_sees_every_project(site: Site) -> None:
    client = browser(site.world)
    sign_in(client, site.world.admin.token)
    assert client.get(f"/web/projects/{site.project}").status_code == 200
    assert f'href="/web/projects/{site.project}"' in client.get("/web/").text


def test_pages_carry_security_headers_and_local_assets_only(site: Site) -> None:
    client = signed_in(site)
    page = client.get(f"/web/records/{site.deployment['id']}/lineage")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]  # once, not twice
    css = client.get("/web/static/web.css")
    assert css.status_code == 200 and "svg.lineage" in css.text
    assert css.headers["x-content-type-options"] == "nosniff"
    script = client.get("/web/static/run.js")
    assert script.status_code == 200 and script.headers["x-content-type-options"] == "nosniff"


def test_an_empty_project_and_a_principal_without_projects(site: Site) -> None:
    empty = site.world.project()
    viewer = site.world.member(empty, "viewer")
    client = browser(site.world)
    sign_in(client, viewer.token)
    page = client.get(f"/web/projects/{empty}")
    assert page.status_code == 200 and "Nothing is registered in this project yet." in page.text
    loner = site.world.principal()
    client = browser(site.world)
    sign_in(client, loner.token)
    assert "holds no role in any project" in client.get("/web/").text


def test_project_lists_runs_by_name_and_number_and_links_series_histories(site: Site) -> None:
    html = signed_in(site).get(f"/web/projects/{site.project}").text
    assert f'<a href="/web/runs/{site.run_id}">rm-web · run 1</a>' in html
    assert f"{site.run_id[:8]}…" not in html
    policy = site.chain.series[-1]
    assert f'href="/web/projects/{site.project}/series/policy_checkpoint/{policy["name"]}"' in html
    assert f'action="/web/projects/{site.project}/runs/compare"' in html


def test_series_history_lists_every_version_and_a_record_links_its_neighbours(site: Site) -> None:
    client = signed_in(site)
    first, middle, last = site.chain.series
    page = client.get(f"/web/projects/{site.project}/series/policy_checkpoint/{middle['name']}")
    assert page.status_code == 200
    table = page.text[page.text.index('data-testid="versions"') :]
    order = [table.index(f'href="/web/records/{r["id"]}"') for r in (last, middle, first)]
    assert order == sorted(order)  # newest first
    assert ">150<" in table and ">50<" in table  # the step of each checkpoint
    html = client.get(f"/web/records/{middle['id']}").text
    nav = html[html.index('data-testid="version-nav"') : html.index("</nav>", html.index('data-testid="version-nav"'))]
    assert (
        f'rel="prev" href="/web/records/{first["id"]}"' in nav and f'rel="next" href="/web/records/{last["id"]}"' in nav
    )
    assert "first version" in client.get(f"/web/records/{first['id']}").text
    assert "latest version" in client.get(f"/web/records/{last['id']}").text
    assert client.get(f"/web/projects/{site.project}/series/policy_checkpoint/no-such").status_code == 404


def test_criteria_page_shows_the_classified_diff_to_the_previous_version(site: Site) -> None:
    project, viewer, criteria = criteria_project(site.world)
    client = browser(site.world)
    sign_in(client, viewer.token)
    first = client.get(f"/web/records/{criteria[0]['id']}").text
    assert "This is the first version of assistant-quality." in first
    minor = client.get(f"/web/records/{criteria[1]['id']}").text
    diff = minor[minor.index('id="criteria-diff"') :]
    assert 'data-testid="change-level">minor<' in diff
    assert "<code>dimensions[helpfulness].description</code>" in diff
    assert "Answers what was asked." in diff and "Answers what was asked, completely." in diff
    major = client.get(f"/web/records/{criteria[2]['id']}").text
    diff = major[major.index('id="criteria-diff"') :]
    assert 'data-testid="change-level">major<' in diff and "<code>dimensions[accuracy].rank</code>" in diff
    assert "re-ranked from 1 to 2" in diff
    history = client.get(f"/web/projects/{project}/series/criteria/assistant-quality").text
    assert history.count('class="badge level-major"') == 1 and history.count('class="badge level-minor"') == 1


def test_batch_page_pages_and_filters_items_and_shows_each_annotator(site: Site) -> None:
    viewer, batch, in_blob = batch_project(site.world)
    client = browser(site.world)
    sign_in(client, viewer.token)
    url = f"/web/records/{batch['id']}/items"
    page = client.get(url)
    assert page.status_code == 200
    html = page.text
    assert html.count("<tr data-annotator=") == 4
    assert "120 of 120 items; 1\N{EN DASH}50 shown" in html and 'rel="next" href="?page=2"' in html
    # ann-4 always picks the response shown first, and misses every gold item
    row = html[html.index('data-annotator="ann-4"') :]
    row = row[: row.index("</tr>")]
    assert "100.0%" in row and 'class="num flag"' in row and "0.0% <span" in row
    last = client.get(url, params={"page": 3}).text
    assert "101\N{EN DASH}120 shown" in last and 'rel="next"' not in last
    one = client.get(url, params={"annotator": "ann-2"}).text
    assert "30 of 120 items" in one and "<td>ann-1</td>" not in one and "<td>ann-2</td>" in one
    against = client.get(url, params={"disagreement": "against"}).text
    assert against.count('class="row-against"') == int(re.search(r"(\d+) of 120 items", against).group(1))
    assert "against majority" in against
    split = client.get(url, params={"disagreement": "split", "annotator": "ann-4"}).text
    assert "of 120 items" in split and "<td>ann-1</td>" not in split
    assert client.get(url, params={"disagreement": "sideways"}).status_code == 422
    # the same items read from a blob: the same page, and the batch's versions link each other
    blob_url = f"/web/records/{in_blob['id']}/items"
    for params in ({"page": 3}, {"annotator": "ann-4", "disagreement": "against"}):
        inline_page, blob_page = client.get(url, params=params).text, client.get(blob_url, params=params).text
        assert _section(inline_page, "items") == _section(blob_page, "items").replace(in_blob["id"], batch["id"])
    assert "2026-11-17 09:44:00 UTC" in client.get(blob_url, params={"page": 3}).text
    record = client.get(f"/web/records/{in_blob['id']}").text
    assert f'rel="prev" href="/web/records/{batch["id"]}"' in record and f'href="{blob_url}"' in record
    assert client.get(f"/web/records/{site.deployment['id']}/items").status_code == 404


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start : html.index("</section>", start)]


def test_run_page_charts_the_log_and_each_checkpoint_and_runs_compare(site: Site, tmp_path: Path) -> None:
    chain, state = site.chain, site.world.state
    first, second = policy_run(chain, "policy-web"), policy_run(chain, "policy-web")
    for run_id, slope in ((first, 1.0), (second, 2.0)):
        start_run(state, run_id)
        rows = [
            {"step": s, "loss": slope / s, "objective/kl": s * slope / 100, "objective/rlhf_reward": s / 10,
             "learning_rate": 1e-5, "grad_norm": 0.5, "objective/entropy": 3.0}
            for s in range(1, 11)
        ]  # fmt: skip
        log_metrics(state, run_id, rows)
        for step in (5, 10):
            metrics = {"step": step, "mean_reward": slope * step / 10, "kl_to_reference": step / 1000}
            checkpoint = register_checkpoint(state, chain, run_id, step, metrics, tmp_path / f"{run_id}-{step}")
    client = signed_in(site)
    html = client.get(f"/web/runs/{second}").text
    assert "<h1>policy-web · run 2</h1>" in html
    for chart in ("loss", "reward", "kl", "checkpoint-mean-reward", "checkpoint-kl-to-reference"):
        assert f'id="chart-{chart}"' in html, chart
    assert "mean_reward: 2 at step 10" in html  # a checkpoint's figure, marked at its step
    checkpoints = html[html.index('data-testid="checkpoints"') :]
    assert re.search(r"policy-web <span class=\"version\">v[34]</span>", checkpoints)
    main = html[
        html.index('data-testid="metrics-main"') : html.index("</table>", html.index('data-testid="metrics-main"'))
    ]
    assert ">loss<" in main and ">objective/kl<" in main and "objective/entropy" not in main
    assert "<details" in html and "objective/entropy" in html[html.index('data-testid="metrics-all"') :]

    compare = client.get(f"/web/projects/{site.project}/runs/compare", params=[("run", first), ("run", second)])
    assert compare.status_code == 200
    page = compare.text
    assert "policy-web · run 1" in page and "policy-web · run 2" in page
    assert 'class="series series-0' in page and 'class="series series-1' in page
    assert "policy-web · run 1 · loss" in page and "policy-web · run 2 · mean_reward" in page
    alone = client.get(f"/web/projects/{site.project}/runs/compare", params={"run": first})
    assert alone.status_code == 422 and "validation_failed" in alone.text
    unknown = [("run", first), ("run", "00000000-0000-7000-8000-000000000000")]
    assert client.get(f"/web/projects/{site.project}/runs/compare", params=unknown).status_code == 404
    record = client.get(f"/web/records/{checkpoint}").text  # the second run's last checkpoint
    assert f'<a class="button" href="/web/runs/{second}">Training run: policy-web · run 2</a>' in record
