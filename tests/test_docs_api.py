"""docs/api.md keeps up with the server: every operation of the OpenAPI document is written there as
`METHOD /path`, and every error code the server can answer is listed as `code`; and the documents link
only to files inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.errors import AppError
from app.main import create_app
from app.state import AppState

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def error_codes() -> set[str]:
    """The `code` of AppError and of every subclass, wherever in the application it is defined (importing
    app.main above imports every package that defines one)."""
    codes, todo = set(), [AppError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return codes


def test_every_route_of_the_openapi_document_is_in_the_api_doc(sqlite_stack: AppState) -> None:
    text = API_DOC.read_text()
    paths = create_app(state=sqlite_stack).openapi()["paths"]
    routes = [f"{method.upper()} {path}" for path, item in paths.items() for method in item if method in METHODS]
    assert len(routes) > 40  # the document really was read
    missing = [route for route in routes if f"`{route}`" not in text]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_every_error_code_is_in_the_api_doc() -> None:
    text = API_DOC.read_text()
    codes = error_codes()
    assert {"validation_failed", "separation_of_duties", "internal_error"} <= codes
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"docs/api.md does not list the error codes: {missing}"


MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_documents_link_only_to_files_inside_the_repository() -> None:
    """A clone stands alone: every relative link of the README and docs/ resolves to a file in the
    repository, and none climbs out of it."""
    root = API_DOC.parents[1]
    documents = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "demo" / "data" / "README.md"]
    broken = []
    for document in documents:
        for target in MARKDOWN_LINK.findall(document.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (document.parent / target).resolve()
            if not path.is_relative_to(root) or not path.exists():
                broken.append(f"{document.relative_to(root)}: {target}")
    assert not broken, broken
    assert all("../shared" not in document.read_text() for document in documents)
