"""The review page's web application (Starlette): the page, its static files and the JSON API.

Routes (every ``/api/`` call needs the token; writes need it in the ``X-Harmonize-Token``
header):

- ``GET /`` the page (``?token=T`` once; a cookie keeps it), ``GET /static/...`` its files;
- ``GET /api/pairs``: the mapped (source, target) pairs;
- ``GET /api/review?source=S&target=T[&order=O]``: the pair's rows in review order (O: one of
  the review queue's orders) and its coverage;
- ``GET /api/search?site=S&q=TEXT``: concepts of a site by code or description;
- ``POST /api/decisions``: one accept / reject / set (:func:`harmonize.serve.api.decision`);
- ``POST /api/decisions/bulk``: accept several codes at once.

Each request opens the workspace for as long as it needs it and no longer; a workspace another
process holds answers 503 with ``Retry-After``, and nothing is written.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from harmonize.core.errors import (
    HarmonizeError,
    InputError,
    UnknownSiteError,
    WorkspaceBusyError,
    WorkspaceError,
)
from harmonize.core.workspace import Workspace
from harmonize.serve import api, pages
from harmonize.serve.security import (
    TOKEN_COOKIE,
    TOKEN_HEADER,
    host_header_name,
    is_loopback,
    same_token,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Everything the page loads comes from this server; no inline script can run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
BUSY_RETRY_S = 1


class _Guard:
    """ASGI middleware: security headers on every answer; with a loopback server, a request
    whose Host header names another machine (DNS rebinding) is refused."""

    def __init__(self, app: ASGIApp, local_only: bool) -> None:
        self.app = app
        self.local_only = local_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.local_only:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not is_loopback(host_header_name(host)):
                answer = _error(403, f"host '{host}' is not this machine's loopback address")
                await answer(scope, receive, send)
                return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in names:
                        headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _status(exc: HarmonizeError) -> int:
    if isinstance(exc, WorkspaceBusyError):
        return 503
    if isinstance(exc, UnknownSiteError) or (
        isinstance(exc, InputError) and " has no concept " in str(exc)
    ):
        return 404
    if isinstance(exc, WorkspaceError):
        return 409
    return 400


class ReviewApp:
    """One workspace served: its token, default reviewer, and one workspace access at a time
    (DuckDB refuses a second connection with other settings in the same process)."""

    def __init__(self, ws: Workspace, token: str, reviewer: str | None) -> None:
        self.ws = ws
        self.token = token
        self.reviewer = reviewer
        self.lock = threading.Lock()

    def run(self, work: Callable[[], Any], status: int = 200) -> JSONResponse:
        """``work()`` under the lock, as JSON; a HarmonizeError as a 4xx/5xx with its message."""
        try:
            with self.lock:
                result = work()
        except HarmonizeError as exc:
            code = _status(exc)
            extra = {"Retry-After": str(BUSY_RETRY_S)} if code == 503 else {}
            return _error(code, str(exc), **extra)
        return JSONResponse(result, status_code=status)

    def authorised(self, request: Request, write: bool) -> bool:
        given = request.headers.get(TOKEN_HEADER)
        if given is None and not write:
            given = request.cookies.get(TOKEN_COOKIE)
        return same_token(given, self.token)


def _page(app: ReviewApp, request: Request) -> Response:
    given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
    if not same_token(given, app.token):
        return HTMLResponse(
            "<!doctype html><title>harmonize review</title><p>Open the address "
            "<code>harmonize serve</code> printed (it carries the token).</p>",
            status_code=401,
        )
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    text = text.replace("{{token}}", html.escape(app.token, quote=True))
    text = text.replace("{{reviewer}}", html.escape(app.reviewer or "", quote=True))
    text = text.replace("{{workspace}}", html.escape(str(app.ws.root), quote=True))
    response = HTMLResponse(text)
    response.set_cookie(TOKEN_COOKIE, app.token, httponly=True, samesite="strict")
    return response


def _query(request: Request, *names: str) -> dict[str, str]:
    missing = [n for n in names if not request.query_params.get(n, "").strip()]
    if missing:
        raise InputError(f"missing query parameter '{missing[0]}' (needs: {', '.join(names)})")
    return {n: request.query_params[n].strip() for n in names}


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def create_app(ws: Workspace, token: str, reviewer: str | None = None,
               local_only: bool = True) -> Starlette:  # fmt: skip
    """The application serving ``ws``; API calls need ``token``."""
    app = ReviewApp(ws, token, reviewer)

    def guarded(handler: Callable, write: bool = False) -> Callable:
        async def endpoint(request: Request) -> Response:
            if not app.authorised(request, write):
                where = f"the {TOKEN_HEADER} header" if write else "the token"
                return _error(401, f"missing or wrong token: send {where} printed at start")
            try:
                return await handler(request)
            except HarmonizeError as exc:
                return _error(_status(exc), str(exc))

        return endpoint

    async def pairs(request: Request) -> Response:
        return app.run(lambda: {"pairs": pages.list_pairs(ws)})

    async def review(request: Request) -> Response:
        q = _query(request, "source", "target")
        order = request.query_params.get("order") or pages.ORDERS[0]
        return app.run(lambda: pages.review_page(ws, q["source"], q["target"], order))

    async def search(request: Request) -> Response:
        q = _query(request, "site", "q")
        limit = api.parse_limit(request.query_params.get("limit"))
        return app.run(lambda: {"hits": pages.search_concepts(ws, q["site"], q["q"], limit)})

    async def decisions(request: Request) -> Response:
        fields = api.decision_fields(await _body(request), app.reviewer)
        return app.run(lambda: api.decision(ws, fields), status=201)

    async def bulk(request: Request) -> Response:
        fields = api.bulk_fields(await _body(request), app.reviewer)
        return app.run(lambda: api.bulk_accept(ws, fields), status=201)

    routes = [
        Route("/", lambda request: _page(app, request)),
        Route("/api/pairs", guarded(pairs)),
        Route("/api/review", guarded(review)),
        Route("/api/search", guarded(search)),
        Route("/api/decisions", guarded(decisions, write=True), methods=["POST"]),
        Route("/api/decisions/bulk", guarded(bulk, write=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, local_only=local_only)])
