"""The CLI as a client of an in-process app: every command module's `RegistryClient` talks to a
`TestClient` with one principal's token, and the consoles are wide enough that tables do not fold."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

import app.cli
from app.cli import app as cli_app
from app.cli import console
from app.client import RegistryClient

runner = CliRunner()


@contextmanager
def bound_cli(monkeypatch: pytest.MonkeyPatch, application: FastAPI, headers: dict[str, str]) -> Iterator[None]:
    class Bound(RegistryClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.base_url = "http://testserver"
            self._http = TestClient(application, headers=headers)

    for info in pkgutil.iter_modules(app.cli.__path__):
        module = importlib.import_module(f"app.cli.{info.name}")
        if hasattr(module, "RegistryClient"):
            monkeypatch.setattr(module, "RegistryClient", Bound)
    widths = console.out.width, console.err.width
    console.out.width = console.err.width = 250
    try:
        yield
    finally:
        console.out.width, console.err.width = widths


def invoke(*args: str) -> Result:
    return runner.invoke(cli_app, list(args))
