"""What a package must not let an approver miss: waivers and waived evidence, and a revocation upstream
of an already approved deployment."""

from __future__ import annotations

import io
import json
import zipfile

from tests.factories import criteria_body, reranked_dimensions
from tests.packages.conftest import Built


def _files(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def test_waived_evidence_and_its_waiver_are_in_the_package(built: Built) -> None:
    chain = built.chain
    deployment = chain.deployment(evaluations=chain.evaluations[:1], name="pilot")  # no adversarial evaluation
    waiver = chain.ok(
        chain.approver,
        "waivers",
        {
            "name": "pilot-without-red-team",
            "rule": "evaluation_evidence_missing",
            "covers": [{"id": deployment["id"]}],
            "spec": {"reason": "internal pilot; red-team round scheduled before general release"},
        },
    )
    chain.approve(deployment)
    response = chain.build(deployment)
    assert response.status_code == 201, response.text
    package = response.json()
    files = _files(chain.download(package))
    assert f"records/{waiver['id']}.json" in files
    html = files["handoff.html"].decode()
    assert "pilot-without-red-team" in html and "red-team round scheduled" in html
    assert any("approved without evaluation evidence ['adversarial']" in w for w in package["spec"]["warnings"])


def test_revocation_upstream_flags_the_next_package(built: Built) -> None:
    chain = built.chain
    batch = chain.batches[0]
    revoked = chain.approver.post(f"/v1/records/{batch['id']}/revoke", json={"reason": "fabricated annotations"})
    assert revoked.status_code == 201, revoked.text
    response = chain.build(built.deployment)
    assert response.status_code == 201, response.text
    package = response.json()
    assert package["version"] == "2"
    warnings = package["spec"]["warnings"]
    assert f"REVOKED: annotation_batch {batch['name']} v1: fabricated annotations" in warnings
    assert "QUARANTINED: deployment prod v1 depends on a revoked record" in warnings
    files = _files(chain.download(package))
    html = files["handoff.html"].decode()
    assert "QUARANTINED" in html and "fabricated annotations" in html
    manifest = json.loads(files["manifest.dsse.json"])
    assert manifest["payloadType"] == "application/vnd.in-toto+json"
    # the package built before the revocation is unchanged
    assert chain.download(built.package) == built.archive


def test_newer_criteria_major_marks_the_package_stale(built: Built) -> None:
    chain = built.chain
    newer = chain.admin.post(chain.url("criteria"), json=criteria_body("2.0.0", dimensions=reranked_dimensions()))
    assert newer.status_code == 201, newer.text
    response = chain.build(built.deployment)
    assert response.status_code == 201, response.text
    warnings = response.json()["spec"]["warnings"]
    assert (
        "STALE: criteria assistant-quality v1.0.0 follows a criteria version superseded by a newer MAJOR version"
        in warnings
    )
    assert any(w.startswith("STALE: deployment prod v1") for w in warnings)
    # the newer criteria is not in the package: the deployment never followed it
    files = _files(chain.download(response.json()))
    assert f"records/{newer.json()['id']}.json" not in files
