"""The web pages show the supervised fine-tuning stage like the others: the demonstration set's page
with its figures, and the sft checkpoint's lineage drawn through it up to the criteria."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.state import AppState
from tests.conftest import World
from tests.packages.chain import PackageChain
from tests.packages.test_sft_stage import sft_stage
from tests.web.support import browser, sign_in


def test_pages_show_the_demonstration_set_and_the_sft_lineage(stack: AppState, _clients: TestClient) -> None:
    world = World(stack, _clients)
    chain = PackageChain(world)
    demonstrations, sft = sft_stage(chain)
    client = browser(world)
    sign_in(client, world.member(chain.project, "viewer").token)
    page = client.get(f"/web/records/{demonstrations['id']}")
    assert page.status_code == 200, page.text
    assert "demonstration set" in page.text and "prompts_covered" in page.text
    project = client.get(f"/web/projects/{chain.project}")
    assert project.status_code == 200 and 'id="kind-demonstration_set"' in project.text
    svg = client.get(f"/web/records/{sft['id']}/lineage").text
    for record in (demonstrations, chain.prompt_set, chain.criteria, chain.base):
        assert f"/web/records/{record['id']}" in svg
    assert "kind-demonstration-set" in svg
