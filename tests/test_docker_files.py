"""docker/ names only what exists: CLI commands and options (as the CLI parses them), settings (the
fields of `Settings`, with values it accepts), compose services and their ports, HTTP routes, and files
of the repository. Docker cannot run here; these checks catch a renamed option, setting or file."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.core.settings import Settings
from app.main import _add_operational_routes

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
PREFIX = "RLHF_REGISTRY_"
# where an image listens unless its command says otherwise
IMAGE_PORTS = {"postgres": 5432, "redis": 6379, "nginx": 80}
PORT_OPTION = re.compile(r"^-(?:-port|s3\.port|port)(?:=(\d+))?$")
LOCAL_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[a-z]*)")


def operational_paths() -> set[str]:
    api = FastAPI()
    _add_operational_routes(api)
    return {route.path for route in api.routes if hasattr(route, "path")}


def cli_problems(argv: list[str], where: str) -> list[str]:
    """`rlhf-registry ARGV --help` exits 0 only where every command and option of ARGV exists (the CLI
    parses left to right and stops at the first unknown name)."""
    result = CliRunner().invoke(cli_app, [*argv, "--help"])
    if result.exit_code != 0:
        return [f"{where}: rlhf-registry {' '.join(argv)} is refused by the CLI (exit {result.exit_code})"]
    return []


def listen_ports(service: dict[str, Any]) -> set[int]:
    command = service.get("command") or []
    ports = set()
    for index, arg in enumerate(command):
        match = PORT_OPTION.match(arg)
        if match:
            ports.add(int(match.group(1) or command[index + 1]))
    if not ports:
        image = str(service.get("image", "")).split("/")[-1].split(":")[0]
        ports.update([IMAGE_PORTS[image]] if image in IMAGE_PORTS else [])
    return ports


def expand_defaults(value: str) -> str:
    """`${VAR:-default}` as compose substitutes it where VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def settings_problems(env: dict[str, str], where: str) -> list[str]:
    problems = []
    values = {}
    for name, value in env.items():
        if not name.startswith(PREFIX):
            continue
        field = name.removeprefix(PREFIX).lower()
        if field not in Settings.model_fields:
            problems.append(f"{where}: {name} is no setting")
        else:
            values[field] = expand_defaults(str(value))
    if not problems:
        try:
            Settings(**values)
        except ValueError as exc:
            problems.append(f"{where}: settings refused: {exc}")
    return problems


def url_problems(env: dict[str, str], services: dict[str, Any], where: str) -> list[str]:
    problems = []
    for name, value in env.items():
        if not isinstance(value, str) or "://" not in value or not name.startswith(PREFIX):
            continue
        parts = urlsplit(expand_defaults(value))
        if parts.scheme in {"file", "s3"} or parts.hostname is None:
            continue
        if parts.hostname not in services:
            problems.append(f"{where}: {name} names host {parts.hostname!r}, no compose service")
        elif parts.port is not None and parts.port not in listen_ports(services[parts.hostname]):
            problems.append(f"{where}: {name} names port {parts.port}, where {parts.hostname} does not listen")
    return problems


def dockerfile_problems(path: Path) -> list[str]:
    problems = []
    text = path.read_text()
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        words = [w for w in line.split() if not w.startswith("--")]
        if "--from" in line:
            continue
        for source in words[:-1]:
            if not (ROOT / source).exists():
                problems.append(f"{path.name}: COPY source {source} is not in the repository")
    for line in re.findall(r"^CMD (\[.+\])$", text, re.M):
        argv = json.loads(line)
        if argv[0] == "rlhf-registry":
            problems += cli_problems(argv[1:], f"{path.name} CMD")
    env_block = re.findall(r"^(?:ENV|    )\s*(RLHF_REGISTRY_[A-Z_]+)=(\S+)", text, re.M)
    problems += settings_problems(dict(env_block), path.name)
    serve_ports = {
        int(argv[argv.index("--port") + 1])
        for argv in (json.loads(cmd) for cmd in re.findall(r"^CMD (\[.+\])$", text, re.M))
        if "serve" in argv and "--port" in argv
    }
    for port, route in LOCAL_URL.findall(text):
        if int(port) not in serve_ports or route not in operational_paths():
            problems.append(f"{path.name}: health check {port}{route} is not a served route on a served port")
    for exposed in re.findall(r"^EXPOSE (\d+)$", text, re.M):
        if int(exposed) not in serve_ports:
            problems.append(f"{path.name}: EXPOSE {exposed} is no port the CMD serves on")
    return problems


def compose_problems(compose_path: Path, nginx_path: Path) -> list[str]:
    compose = yaml.safe_load(compose_path.read_text())
    services: dict[str, Any] = compose["services"]
    problems = []
    for name, service in services.items():
        where = f"compose {name}"
        command = service.get("command") or []
        if command[:1] == ["rlhf-registry"]:
            problems += cli_problems(command[1:], where)
        env = service.get("environment") or {}
        problems += settings_problems(env, where)
        problems += url_problems(env, services, where)
        build = service.get("build")
        if build:
            context = (compose_path.parent / build["context"]).resolve()
            dockerfile = context / build["dockerfile"]
            if not dockerfile.exists():
                problems.append(f"{where}: no Dockerfile {build['dockerfile']}")
            elif "target" in build and f" AS {build['target']}\n" not in dockerfile.read_text():
                problems.append(f"{where}: {build['dockerfile']} has no stage {build['target']}")
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                problems.append(f"{where}: depends on {dependency!r}, no compose service")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith(".") and not (compose_path.parent / source).exists():
                problems.append(f"{where}: bind source {source} is not in docker/")
        proxy = "nginx" in str(service.get("image"))
        served = nginx_listen(nginx_path) if proxy else listen_ports(service)
        if proxy or command[:2] == ["rlhf-registry", "serve"]:
            test = (service.get("healthcheck") or {}).get("test") or []
            for port, route in LOCAL_URL.findall(" ".join(test)):
                if int(port) not in served or (route not in operational_paths()):
                    problems.append(f"{where}: health check {port}{route} is not a served route on a served port")
        for mapping in service.get("ports") or []:
            inside = int(str(mapping).split(":")[-1])
            if inside not in served:
                problems.append(f"{where}: publishes port {inside}, where it does not listen")
    for secret in (compose.get("secrets") or {}).values():
        # the key itself is the operator's to create; its folder ships with the repository
        if not (compose_path.parent / secret["file"]).parent.is_dir():
            problems.append(f"compose secrets: no folder for {secret['file']}")
    for host, port in re.findall(r"^\s*server ([\w.-]+):(\d+)", nginx_path.read_text(), re.M):
        if host not in services:
            problems.append(f"nginx.conf: upstream {host} is no compose service")
        elif int(port) not in listen_ports(services[host]):
            problems.append(f"nginx.conf: upstream {host}:{port}, where {host} does not listen")
    return problems


def nginx_listen(nginx_path: Path) -> set[int]:
    return {int(port) for port in re.findall(r"^\s*listen (\d+);", nginx_path.read_text(), re.M)}


def all_problems(docker_dir: Path) -> list[str]:
    problems = compose_problems(docker_dir / "compose.yaml", docker_dir / "nginx.conf")
    for dockerfile in sorted(docker_dir.glob("Dockerfile.*")):
        if not dockerfile.name.endswith(".dockerignore"):
            problems += dockerfile_problems(dockerfile)
    return problems


def test_docker_files_name_only_what_exists() -> None:
    assert all_problems(DOCKER) == []


def test_compose_runs_the_production_topology() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    commands = {name: shlex.join(service.get("command") or []) for name, service in services.items()}
    assert commands["migrate"] == "rlhf-registry migrate"
    serving = [name for name, command in commands.items() if command.startswith("rlhf-registry serve --no-worker")]
    assert len(serving) == 2 and all("--workers 2" in commands[name] for name in serving)
    assert commands["worker"].startswith("rlhf-registry worker")
    assert {"postgres", "redis", "s3", "proxy"} <= set(services)


@pytest.fixture
def docker_copy(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "docker"
    shutil.copytree(DOCKER, copy)
    yield copy


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


MISTAKES: dict[str, Callable[[Path], None]] = {
    "option": lambda d: replace_in(d / "compose.yaml", '"--workers", "2"', '"--worker-count", "2"'),
    "command": lambda d: replace_in(d / "compose.yaml", '["rlhf-registry", "migrate"]', '["rlhf-registry", "migrat"]'),
    "setting": lambda d: replace_in(d / "compose.yaml", "RLHF_REGISTRY_DB_POOL_SIZE", "RLHF_REGISTRY_POOL_SIZE"),
    "setting value": lambda d: replace_in(
        d / "compose.yaml", 'RLHF_REGISTRY_DB_POOL_SIZE: "5"', "RLHF_REGISTRY_DB_POOL_SIZE: x"
    ),
    "service host": lambda d: replace_in(d / "compose.yaml", "redis://redis:6379", "redis://cache:6379"),
    "service port": lambda d: replace_in(d / "compose.yaml", "http://s3:8333", "http://s3:9000"),
    "health route": lambda d: replace_in(d / "compose.yaml", "8000/readyz", "8000/ready"),
    "upstream": lambda d: replace_in(d / "nginx.conf", "server api-2:8000", "server api-3:8000"),
    "upstream port": lambda d: replace_in(d / "nginx.conf", "server api-2:8000", "server api-2:8080"),
    "copy source": lambda d: replace_in(d / "Dockerfile.api", "COPY workers ./workers", "COPY worker ./workers"),
    "dockerfile cmd": lambda d: replace_in(d / "Dockerfile.worker", '"--queues", "runs"', '"--queue", "runs"'),
    "build target": lambda d: replace_in(d / "compose.yaml", "target: cpu", "target: cpu-only"),
    "bind source": lambda d: replace_in(d / "compose.yaml", "./nginx.conf:", "./proxy.conf:"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_wrong_name_is_found(docker_copy: Path, mistake: str) -> None:
    MISTAKES[mistake](docker_copy)

    assert all_problems(docker_copy) != []
