"""Each page renders what its readers need, from the same services as the API, and nothing of a
project the principal holds no role in."""

from __future__ import annotations

import io
import re
import zipfile

from fastapi.testclient import TestClient

from tests.factories import criteria_body, reranked_dimensions
from tests.packages.chain import PackageChain
from tests.web.support import (
    Site,
    approved_chain,
    browser,
    end_run,
    log_metrics,
    queued_run,
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
    assert "rewards/accuracies" in live["html"] and "<polyline" in live["html"] and "run-running" in live["html"]

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
