"""What every page of a Sluis node shares: templates, the stylesheet, login, CSRF, negotiation.

A :class:`PageKit` is made once per application (connector or catalogue) with the function that
turns a pasted token into a principal (the connector's operator, or a catalogue publisher).
Pages are server-rendered Jinja2 templates with autoescaping; there is no build step and no
external font, script or stylesheet. Every HTML answer carries a Content-Security-Policy that
allows only this origin, so a page cannot be framed or load anything from elsewhere.

:class:`HtmlAlternates` lets an API URL answer a browser with its page: a GET whose ``Accept``
prefers HTML is routed to the page's path before routing, so ``/catalogue/search`` gives JSON
to a client and the search page to a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.http import bearer_token
from connector.pages.negotiate import prefers_html
from connector.pages.sessions import (
    MAX_TOKEN_CHARS,
    SESSION_SECONDS,
    LoginThrottle,
    Session,
    SessionStore,
    cookie_names,
    new_login_token,
    same_token,
)

PAGES: Final = "/pages"
STATIC_FILES: Final = {
    "sluis.css": "text/css; charset=utf-8",
    "progress.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# A page's form is a few fields, a pasted policy at most a few hundred KB; bigger bodies are
# refused before they are read (catalogue uploads get the catalogue's document limit instead).
MAX_FORM_BYTES: Final = 1024 * 1024
# Form bodies (not uploads) are a few fields; refuse more before parsing.
MAX_FORM_FIELDS: Final = 64
MAX_FORM_FILES: Final = 1
# Where a login may send the browser next: a path on this node, nothing else.
_LOCAL_PATH: Final = re.compile(r"/[^\s\\/][^\s\\]*|/")

TokenCheck = Callable[[str], str | None]


def _template_dir() -> Path:
    return Path(str(resources.files("connector.pages").joinpath("templates")))


class PageKit:
    """Templates, sessions and login for one application's pages."""

    def __init__(
        self,
        *,
        node_name: str,
        check_token: TokenCheck,
        token_name: str,
        kind: str,
        public_url: str,
        template_dirs: Sequence[Path] = (),
        navigation: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``kind`` and ``public_url`` name this server's cookies (see :func:`cookie_names`)."""
        self.node_name = node_name
        self.cookies = cookie_names(kind, public_url)
        self.check_token = check_token
        self.token_name = token_name
        self.navigation = tuple(navigation)
        self.sessions = SessionStore()
        self.throttle = LoginThrottle()
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(path)) for path in (*template_dirs, _template_dir())]),
            autoescape=select_autoescape(["html"], default_for_string=True, default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["pages"] = PAGES
        self.env.filters["quote"] = lambda text: quote(str(text), safe="")

    # ---- rendering ---------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        session = self.session(request)
        values = {
            "node_name": self.node_name,
            "navigation": self.navigation,
            "session": session,
            "csrf": session.csrf if session else "",
            "current": request.url.path,
            **(context or {}),
        }
        body = self.env.get_template(template).render(values)
        return HTMLResponse(body, status_code=status, headers=dict(SECURITY_HEADERS))

    def error(self, request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        return self.render(request, "error.html", {"title": title, "detail": detail}, status)

    def form_expired(self, request: Request) -> HTMLResponse:
        return self.error(request, 403, "Form expired", "The form was not sent from this page; reload it.")

    # ---- who is asking -----------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        session = self.sessions.get(request.cookies.get(self.cookies.session))
        if session is not None and session.token and self.check_token(session.token) != session.principal:
            self.sessions.close(session.id)  # its token was revoked or rotated since the login
            return None
        return session

    def principal(self, request: Request) -> str | None:
        """The logged-in principal: the session's, or a bearer token's (for API clients)."""
        session = self.session(request)
        if session is not None:
            return session.principal
        token = bearer_token(request.headers.get("authorization"))
        if token is not None and len(token) <= MAX_TOKEN_CHARS:
            return self.check_token(token)
        return None

    def login_redirect(self, request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PAGES}/login?next={quote(target, safe='')}", status_code=303)

    async def form(self, request: Request) -> FormData:
        """The submitted form, within the field limits (a bad body is an empty form)."""
        try:
            form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
        except HTTPException:
            raise  # the body is over the size limit: answered 413
        except Exception:  # malformed multipart or too many parts: treated as no form at all
            return FormData()
        # U+0000 cannot be stored in PostgreSQL text (a 500 wherever a field reaches the store)
        # and no field needs it: such a form is malformed too
        if any(isinstance(value, str) and "\x00" in (name + value) for name, value in form.multi_items()):
            return FormData()
        return form

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        session = self.session(request)
        given = form.get("csrf")
        return session is not None and isinstance(given, str) and same_token(given, session.csrf)

    # ---- the login pages ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(prefix=PAGES, include_in_schema=False)

        @router.get("/static/{name}")
        def static(name: str) -> Response:
            media_type = STATIC_FILES.get(name)
            if media_type is None:
                return Response("not found", status_code=404, media_type="text/plain")
            body = resources.files("connector.pages").joinpath("static", name).read_bytes()
            return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})

        @router.get("/login")
        def login_page(request: Request, next: str = "") -> HTMLResponse:
            return self._login_form(request, _local(next), "")

        @router.post("/login")
        async def login(request: Request) -> Response:
            client = request.client.host if request.client else "unknown"
            wait = self.throttle.wait_seconds(client)
            if wait:
                refusal = self._login_form(
                    request, "", f"Too many failed logins; try again in {wait} seconds.", 429
                )
                refusal.headers["Retry-After"] = str(wait)
                return refusal
            form = await self.form(request)
            target = _local(str(form.get("next", "")))
            given = form.get("login_csrf")
            expected = request.cookies.get(self.cookies.login, "")
            if not isinstance(given, str) or not same_token(given, expected):
                return self._login_form(request, target, "The login form expired; please try again.", 400)
            token = form.get("token")
            principal = self.check_token(token.strip()) if isinstance(token, str) and token.strip() else None
            if principal is None or (isinstance(token, str) and len(token) > MAX_TOKEN_CHARS):
                self.throttle.failed(client)
                return self._login_form(request, target, f"This {self.token_name} is not valid.", 401)
            self.throttle.succeeded(client)
            session = self.sessions.open(principal, token.strip() if isinstance(token, str) else "")
            response = RedirectResponse(target or f"{PAGES}/", status_code=303)
            response.set_cookie(
                self.cookies.session,
                session.id,
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
            response.delete_cookie(self.cookies.login, path=f"{PAGES}/login")
            return response

        @router.post("/logout")
        async def logout(request: Request) -> Response:
            form = await self.form(request)
            if self.csrf_ok(request, form):
                self.sessions.close(request.cookies.get(self.cookies.session))
            response = RedirectResponse(f"{PAGES}/", status_code=303)
            response.delete_cookie(self.cookies.session, path="/")
            return response

        return router

    def _login_form(self, request: Request, target: str, message: str, status: int = 200) -> HTMLResponse:
        token = new_login_token()
        response = self.render(
            request,
            "login.html",
            {"next": target, "login_csrf": token, "message": message, "token_name": self.token_name},
            status,
        )
        response.set_cookie(
            self.cookies.login,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=f"{PAGES}/login",
        )
        return response


def _local(target: str) -> str:
    """A post-login destination on this node, or nothing (never another site)."""
    if not target or target.startswith("//") or not _LOCAL_PATH.fullmatch(target):
        return ""
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else ""


class HtmlAlternates:
    """ASGI middleware: a browser's GET of an API path is answered by that path's page.

    ``routes`` maps a compiled pattern on the path to a replacement template (``re.sub`` form).
    Only GET/HEAD requests whose ``Accept`` prefers HTML are rewritten; everything else passes
    through untouched.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[tuple[re.Pattern[str], str]]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            for pattern, replacement in self.routes:
                if pattern.fullmatch(path) and prefers_html(_header(scope, b"accept")):
                    scope = {**scope, "path": pattern.sub(replacement, path)}
                    break
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None
