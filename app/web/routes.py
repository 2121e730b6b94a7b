"""Read-only pages for people, under /web: sign in with an API token, projects, series histories,
records, batch items, lineage, runs and their comparison, and handoff packages. Same principals and
roles as the REST API (a project without a role is 404); the routes stay out of the OpenAPI schema, and
each one only authorises, calls a view module (`app.web.views`, `series`, `batch_items`, `runs`) and
renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.access import service as access_service
from app.api.deps import StateDep, UowDep
from app.core.errors import NotFound, Unauthenticated
from app.packages.routes import archive_download
from app.records.schemas import to_read
from app.state import AppState
from app.web import batch_items, handoff, runs, series, views
from app.web.responses import WebRoute, page
from app.web.session import (
    COOKIE,
    CSRF_COOKIE,
    HOME,
    SIGN_IN,
    SIGN_OUT,
    WebActorDep,
    bearer,
    clear_csrf,
    clear_session,
    csrf_matches,
    new_csrf,
    safe_next,
    set_csrf,
    set_session,
)
from app.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "web"
MAX_TOKEN_CHARS = 512
# the handoff page inside a package is a document of its own: no script, nothing fetched, a unique origin
PREVIEW_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=307)


@router.get(SIGN_IN)
def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    csrf = new_csrf()
    response = page(request, "web/sign_in.html", actor=None, next=safe_next(next), error=None, csrf=csrf)
    set_csrf(response, request, csrf)
    return response


@router.post(SIGN_IN)
async def sign_in(request: Request, state: StateDep) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    if not csrf_matches(request, (form.get("csrf") or [""])[0]):
        # login CSRF: another site must not sign this browser in as its own principal
        csrf = new_csrf()
        refused = page(
            request,
            "web/sign_in.html",
            actor=None,
            status_code=403,
            next=target,
            error="This sign-in form has expired or did not come from this site. Please sign in again.",
            csrf=csrf,
        )
        set_csrf(refused, request, csrf)
        return refused
    try:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("paste an API token")
        await run_in_threadpool(_authenticate, state, token)
    except Unauthenticated:
        return page(
            request,
            "web/sign_in.html",
            actor=None,
            status_code=401,
            next=target,
            error="That token is unknown, expired or revoked.",
            csrf=request.cookies.get(CSRF_COOKIE, ""),
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, token)
    return response


def _authenticate(state: AppState, token: str) -> None:
    """Check a pasted token in a read unit of its own (the sign-in form takes no unit of work, since
    its body is a form the route reads itself)."""
    with state.sessions.read() as session:
        access_service.authenticate(session, bearer(token))


@router.get(SIGN_OUT)
def sign_out_form(request: Request) -> Response:
    """A GET never signs out (a link or an image on another site could): it shows the form that does."""
    if not request.cookies.get(COOKIE):
        return RedirectResponse(SIGN_IN, status_code=303)
    return _sign_out_page(request, status_code=200, error=None)


@router.post(SIGN_OUT)
async def sign_out(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=10)
    if not csrf_matches(request, (form.get("csrf") or [""])[0]):
        error = "This sign-out form has expired or did not come from this site. Please sign out again."
        return _sign_out_page(request, status_code=403, error=error)
    response = RedirectResponse(SIGN_IN, status_code=303)
    clear_session(response)
    clear_csrf(response, path=SIGN_OUT)
    return response


def _sign_out_page(request: Request, *, status_code: int, error: str | None) -> Response:
    csrf = new_csrf()
    response = page(request, "web/sign_out.html", actor=None, status_code=status_code, error=error, csrf=csrf)
    set_csrf(response, request, csrf, path=SIGN_OUT)
    return response


@router.get(HOME)
def home(request: Request, uow: UowDep, actor: WebActorDep) -> HTMLResponse:
    return page(request, "web/home.html", actor=actor, projects=views.home(uow.session, actor))


@router.get("/web/projects/{project}")
def project(project: str, request: Request, uow: UowDep, actor: WebActorDep) -> HTMLResponse:
    access = access_service.project_access(uow.session, actor, project, views.VIEW)
    return page(request, "web/project.html", actor=actor, **views.project_overview(uow.session, access.project))


@router.get("/web/projects/{project}/series/{kind}/{name}")
def series_history(
    project: str, kind: str, name: str, request: Request, uow: UowDep, actor: WebActorDep
) -> HTMLResponse:
    access = access_service.project_access(uow.session, actor, project, views.VIEW)
    context = series.history_page(uow.session, access.project, kind, name)
    return page(request, "web/series.html", actor=actor, **context)


@router.get("/web/projects/{project}/runs/compare")
def compare_runs(
    project: str,
    request: Request,
    uow: UowDep,
    actor: WebActorDep,
    run: Annotated[list[str], Query(max_length=runs.MAX_COMPARED * 2)] = [],  # noqa: B006 (FastAPI copies it)
) -> HTMLResponse:
    access = access_service.project_access(uow.session, actor, project, views.VIEW)
    context = runs.compare_page(uow.session, access.project, run)
    return page(request, "web/compare.html", actor=actor, **context)


@router.get("/web/records/{record_id}")
def record(record_id: str, request: Request, uow: UowDep, actor: WebActorDep) -> HTMLResponse:
    found, project_name = views.visible_record(uow.session, actor, record_id)
    return page(request, "web/record.html", actor=actor, **views.record_page(uow.session, found, project_name))


@router.get("/web/records/{record_id}/record.json")
def record_json(record_id: str, uow: UowDep, actor: WebActorDep) -> JSONResponse:
    """The envelope exactly as GET /v1/records/{id} returns it, for a reader who wants the raw document."""
    found, project_name = views.visible_record(uow.session, actor, record_id)
    return JSONResponse(to_read(found, project_name).model_dump(mode="json"))


@router.get("/web/records/{record_id}/items")
def batch(
    record_id: str,
    request: Request,
    uow: UowDep,
    actor: WebActorDep,
    state: StateDep,
    annotator: Annotated[str, Query(max_length=200)] = "",
    disagreement: batch_items.Disagreement = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    found, project_name = views.visible_record(uow.session, actor, record_id)
    context = batch_items.batch_page(
        uow.session, state.blobs, found, annotator=annotator, disagreement=disagreement, page=page_number
    )
    return page(request, "web/batch.html", actor=actor, project=project_name, **context)


@router.get("/web/records/{record_id}/lineage")
def lineage(
    record_id: str,
    request: Request,
    uow: UowDep,
    actor: WebActorDep,
    direction: Literal["upstream", "downstream"] = "upstream",
) -> HTMLResponse:
    found, project_name = views.visible_record(uow.session, actor, record_id)
    context = views.lineage_page(uow.session, found, project_name, direction)
    return page(request, "web/lineage.html", actor=actor, **context)


@router.get("/web/records/{record_id}/blobs/{digest}")
def record_blob(record_id: str, digest: str, uow: UowDep, actor: WebActorDep, state: StateDep) -> Response:
    """A file of a record, for the record's viewers (the same people GET /v1/blobs lets read it)."""
    found, _ = views.visible_record(uow.session, actor, record_id)
    file = next((f for f in views.record_files(uow.session, found) if f["digest"] == digest), None)
    if file is None:
        raise NotFound(f"record {record_id} references no blob {digest}")
    name = file["path"].rsplit("/", 1)[-1] or "blob"
    headers = {
        "Content-Length": str(file["size"]),
        "Content-Disposition": f'attachment; filename="{_ascii_filename(name)}"',
        "X-Content-SHA256": digest,
    }
    return StreamingResponse(state.blobs.iter_bytes(digest), headers=headers, media_type="application/octet-stream")


@router.get("/web/records/{record_id}/package/handoff.html")
def package_preview(record_id: str, uow: UowDep, actor: WebActorDep, state: StateDep) -> HTMLResponse:
    found, _ = views.visible_record(uow.session, actor, record_id)
    html = handoff.read_member(state.blobs, found)
    return HTMLResponse(html, headers={"Content-Security-Policy": PREVIEW_CSP})


@router.get("/web/records/{record_id}/package/download")
def package_download(record_id: str, uow: UowDep, actor: WebActorDep, state: StateDep) -> Response:
    found, _ = views.visible_record(uow.session, actor, record_id)
    handoff.archive_digest(found)  # not_found for a record that is no package
    return archive_download(state.blobs, found)


@router.get("/web/runs/{run_id}")
def run(run_id: str, request: Request, uow: UowDep, actor: WebActorDep) -> HTMLResponse:
    found, project_name = runs.visible_run(uow.session, actor, run_id)
    return page(request, "web/run.html", actor=actor, **runs.run_page(uow.session, found, project_name))


@router.get("/web/runs/{run_id}/live.json")
def run_live(run_id: str, uow: UowDep, actor: WebActorDep, seen: Annotated[int, Query(ge=0)] = 0) -> JSONResponse:
    """What run.js polls while a run is queued or running: its status and, when something happened
    since event `seen`, the live part of the page rendered again."""
    found, project_name = runs.visible_run(uow.session, actor, run_id)
    body: dict[str, object] = {"status": found.status, "live": found.status in runs.LIVE_STATUSES}
    body["seq"] = found.last_seq
    if found.last_seq != seen:
        body["html"] = render("web/_run_live.html", **runs.run_page(uow.session, found, project_name))
    return JSONResponse(body)


def _ascii_filename(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
