"""`rlhf-registry tokens create|list|revoke` as a client of a real `serve`: for oneself, for another
principal as a global admin, listed without secrets, revoked; mistakes end in one line and exit 1."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from bench.serving import CLI, Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("tokens")) as running:
        yield running


def cli(
    served: Served, *args: str, token: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**served.env, "COLUMNS": "200"}
    if token is not None:
        env["RLHF_REGISTRY_TOKEN"] = token
    if url is not None:
        env["RLHF_REGISTRY_URL"] = url
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert code in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_create_list_and_revoke(served: Served) -> None:
    created = cli(served, "tokens", "create", "--label", "ci", "--expires-in-days", "3")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"rlr_[A-Za-z0-9_-]{43}", secret)
    token_id = re.search(r"token (\S+) for admin, expires 20", created.stderr)
    assert token_id is not None, created.stderr
    assert json.loads(cli(served, "me", token=secret).stdout)["principal"] == "admin"

    listed = cli(served, "tokens", "list", "--json")
    assert listed.returncode == 0 and secret not in listed.stdout
    items = {item["id"]: item for item in json.loads(listed.stdout)}
    assert items[token_id.group(1)]["label"] == "ci" and items[token_id.group(1)]["state"] == "active"
    table = cli(served, "tokens", "list")
    assert table.returncode == 0 and token_id.group(1) in table.stdout and "active" in table.stdout

    revoked = cli(served, "tokens", "revoke", token_id.group(1))
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    refused = cli(served, "me", token=secret)
    _one_line_error(refused, "unauthenticated")
    assert "revoked" in refused.stderr


def test_a_global_admin_makes_and_lists_tokens_for_others(served: Served) -> None:
    bootstrap = subprocess.run(
        [*CLI, "admin", "create-token", "--principal", "bob"],
        env=served.env,
        capture_output=True,
        text=True,
        check=True,
    )
    bob = bootstrap.stdout.strip().splitlines()[-1]
    made = cli(served, "tokens", "create", "--principal", "bob", "--label", "for bob")
    assert made.returncode == 0, made.stderr
    assert json.loads(cli(served, "me", token=made.stdout.split()[-1]).stdout)["principal"] == "bob"
    everyone = json.loads(cli(served, "tokens", "list", "--json", "--all").stdout)
    assert {"admin", "bob"} <= {item["principal"] for item in everyone}
    own = json.loads(cli(served, "tokens", "list", "--json", token=bob).stdout)
    assert {item["principal"] for item in own} == {"bob"} and len(own) == 2

    admins = [item["id"] for item in everyone if item["principal"] == "admin"]
    _one_line_error(cli(served, "tokens", "revoke", admins[0], token=bob), "not_found")
    _one_line_error(cli(served, "tokens", "create", "--principal", "admin", token=bob), "forbidden")
    _one_line_error(cli(served, "tokens", "list", "--all", token=bob), "forbidden")


def test_mistakes_end_in_one_line(served: Served) -> None:
    _one_line_error(cli(served, "tokens", "revoke", "no-such-token"), "not_found")
    _one_line_error(cli(served, "tokens", "list", token="rlr_not-a-token"), "unauthenticated")
    unreachable = cli(served, "tokens", "list", url="http://127.0.0.1:9")
    _one_line_error(unreachable, "cannot reach")
    bad = cli(served, "tokens", "create", "--expires-in-days", "0")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
