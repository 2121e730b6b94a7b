"""The CLI's one console pair (results on stdout, everything else on stderr) and its one error printer.

A user mistake never ends in a traceback: `report` turns each failure a command can meet (an answer
of the server's, a server that cannot be reached, a file that cannot be read or parsed, an export of
the wrong shape, a `UserError` a command raised) into one line saying what went wrong and what to do,
and the exit code (1; 2 for a usage mistake). `GuidedGroup` applies it to every command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from typer.core import TyperGroup

from app.client import ApiError
from app.client.registry import DEFAULT_URL
from app.core.errors import AppError

if TYPE_CHECKING:
    from app.state import AppState

out = Console()
err = Console(stderr=True)

USAGE = 2
# how many of a problem's field errors are listed under its line
FIELD_ERRORS_SHOWN = 20

# what to do about an answer, by HTTP status, when the problem itself does not say
_HINTS = {
    401: "set RLHF_REGISTRY_TOKEN to a valid token: `rlhf-registry admin create-token` or `tokens create`",
    403: "ask a project admin for a role that allows this: `rlhf-registry projects member`",
    404: "check the project, kind, name, version or id: `rlhf-registry records list PROJECT KIND` lists them",
    409: "register a new version instead: `rlhf-registry records list PROJECT KIND --name NAME` shows the latest",
    413: "the request is larger than the server accepts: split it or raise the server's limit",
    429: "the server is busy: try again shortly",
}


class UserError(Exception):
    """A mistake the CLI itself found: `message` says what is wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str = "", *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def usage_error(message: str, hint: str = "") -> UserError:
    """A mistake in the command line itself (exit code 2)."""
    return UserError(message, hint, exit_code=USAGE)


def _line(what: str, message: str, hint: str = "") -> None:
    # one line, whatever the message holds (a server's detail, a proxy's page)
    text = f"[red]{escape(what)}[/red]: {escape(' '.join(message.split()))}"
    if hint:
        text += f" [dim]({escape(hint)})[/dim]"
    err.print(text, soft_wrap=True)


def _api_error(exc: ApiError) -> None:
    detail = str(exc.problem.get("detail") or exc.problem.get("title") or "")
    what = f"error {exc.status} {exc.code}" if exc.status else f"error {exc.code}"
    _line(what, detail, _HINTS.get(exc.status, ""))
    for item in (exc.problem.get("errors") or [])[:FIELD_ERRORS_SHOWN]:
        if isinstance(item, dict):
            where = ".".join(str(x) for x in item.get("loc", []))
            err.print(f"  {escape(where)}: {escape(str(item.get('msg')))}", soft_wrap=True)


def report(exc: BaseException) -> int | None:
    """Print `exc` as one line (and a problem's field errors) and return the exit code; None for an
    exception that is not a user's mistake (a bug: let it raise)."""
    if isinstance(exc, UserError):
        _line("error", exc.message, exc.hint)
        return exc.exit_code
    if isinstance(exc, ApiError):
        _api_error(exc)
        return 1
    if isinstance(exc, AppError):  # a server-side command (admin, blobs gc) refused by the domain
        _line(f"error {exc.code}", exc.detail)
        return 1
    if type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith("sqlalchemy"):
        # matched by name: importing sqlalchemy here would weigh on every client command's start-up
        _line("error", "cannot open the database", "check RLHF_REGISTRY_DATABASE_URL and that the database runs")
        return 1
    # before TransportError, of which UnsupportedProtocol is one
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        _line("error", f"RLHF_REGISTRY_URL is not a usable URL: {exc}", "set it like http://127.0.0.1:8000")
        return USAGE
    if isinstance(exc, httpx.TimeoutException):
        _line("error", f"the registry at {registry_url()} did not answer in time", "try again; check the server's log")
        return 1
    if isinstance(exc, httpx.TransportError):
        _line(
            "error",
            f"cannot reach the registry at {registry_url()}: {exc.__class__.__name__}",
            "start it with `rlhf-registry serve` or `make run`, or set RLHF_REGISTRY_URL to where it runs",
        )
        return 1
    if isinstance(exc, json.JSONDecodeError):
        _line("error", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "fix the JSON and retry")
        return 1
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError | NotADirectoryError):
        what = exc.filename if exc.filename is not None else exc
        _line("error", f"cannot open {what}: {exc.strerror}", "check the path")
        return 1
    if isinstance(exc, OSError):
        _line("error", f"{exc.__class__.__name__}: {exc}")
        return 1
    return None


class GuidedGroup(TyperGroup):
    """Every command runs under `report`: a user's mistake ends in one line and an exit code."""

    # `ctx` is the Context of the click that typer runs on (a vendored copy in recent typer releases)
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # typer's own Exit, Abort and usage errors are none of report's
            code = report(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None


def require_database_at_head(state: AppState) -> None:
    """For the commands that act on the database directly: refuse one that is not migrated."""
    from app.core.migrate import DatabaseNotAtHeadError, require_head

    try:
        require_head(state.sessions.engine, state.settings.database_url)
    except DatabaseNotAtHeadError as exc:
        raise UserError(str(exc)) from None


def registry_url() -> str:
    return os.environ.get("RLHF_REGISTRY_URL", DEFAULT_URL)


def read_json(path: Path) -> Any:
    """The JSON in `path`; a missing file or bad JSON is a `UserError` naming the file."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "fix the file and retry"
        ) from None


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    value = read_json(path)
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a JSON {type(value).__name__}, not the object {what} needs")
    return value


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str))


def byte_progress() -> Progress:
    """A progress bar over bytes, on stderr (stdout stays for results)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
    )
