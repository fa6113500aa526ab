"""The dashboard's HTTP plumbing: signed-in visits, CSRF on every change, Jinja pages, cookies and security headers.

Every page is served through `Dashboard.page`, which admits the visit (a session cookie, else a redirect to sign-in
for a browser and 401 JSON for anything else), checks the CSRF token of every POST, and turns a ServiceError into an
error page. The views stay a few lines each (dashboard_routes).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib import errors, wiring
from chalicelib.domain.operator_sessions import OperatorSession
from chalicelib.edge import replies, requests
from chalicelib.edge.page_headers import secured
from chalicelib.services import operator_sessions

SESSION_COOKIE = "docora_session"
LOGIN_COOKIE = "docora_login"  # the sign-in form's double-submit token: no session exists yet to hold one
FORM = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES = 16 * 1024
_TEMPLATES = Path(__file__).parent / "templates"
_ERROR_STATUS = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unprocessable: 422,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
    errors.GitFailure: 503,
}


@dataclass
class Visit:
    """One request to the dashboard: who (the session, once signed in), what they sent, and where the app lives."""

    request: Request
    now: datetime
    session: OperatorSession | None = None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> str:
        """The path prefix in front of /admin: API Gateway's stage, when the URL carries it."""
        context = self.request.context or {}
        stage, path = context.get("stage"), context.get("path") or ""
        return f"/{stage}" if stage and path.startswith(f"/{stage}/") else ""

    @property
    def secure(self) -> bool:
        return (self.request.headers.get("x-forwarded-proto") or "").lower() == "https"

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params or {}

    def url(self, path: str, **query: object) -> str:
        shown = {name: value for name, value in query.items() if value not in (None, "")}
        return self.root + path + ("?" + urlencode(shown) if shown else "")

    def cookie(self, name: str) -> str | None:
        for part in (self.request.headers.get("cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                return value
        return None

    def set_cookie(self, name: str, value: str, *, max_age: int) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{name}={value}; Path={self.root}/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"

    def back(self, default: str) -> str:
        """Where a form said to return to, if that is a dashboard page; else `default`."""
        back = self.form.get("back") or ""
        return back if back.startswith(self.root + "/admin") and "//" not in back else self.url(default)


class Dashboard:
    """A Chalice blueprint of dashboard pages."""

    def __init__(self, import_name: str) -> None:
        self.blueprint = Blueprint(import_name)

    def page(
        self, path: str, methods: tuple[str, ...] = ("GET",), *, signed_in: bool = True
    ) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def declare(view: Callable[..., Response]) -> Callable[..., Response]:
            @functools.wraps(view)
            def serve(**path_parameters: str) -> Response:
                visit = Visit(self.blueprint.current_request, datetime.now(UTC))
                return secured(_serve(view, visit, path_parameters, signed_in=signed_in))

            self.blueprint.route(path, methods=list(methods), content_types=[FORM, "application/json"])(serve)
            return view

        return declare


def _serve(view: Callable[..., Response], visit: Visit, parameters: dict[str, str], *, signed_in: bool) -> Response:
    try:
        if visit.request.method == "POST":
            visit.form = _form(visit.request)
        if signed_in:
            visit.session = _admit(visit)
            if visit.session is None:
                return _sign_in_first(visit)
            if visit.request.method == "POST":
                operator_sessions.check_csrf(visit.session, visit.form.get("csrf_token"))
        return view(visit, **parameters)
    except errors.ServiceError as error:
        return render(visit, "error.html", status=_ERROR_STATUS[type(error)], message=str(error))


def _admit(visit: Visit) -> OperatorSession | None:
    try:
        return operator_sessions.admit(visit.cookie(SESSION_COOKIE), now=visit.now, deps=wiring.deps())
    except errors.Unauthorized:
        return None


def _sign_in_first(visit: Visit) -> Response:
    """A browser is sent to sign in and brought back; a script or API client gets the protocol's 401."""
    accept = visit.request.headers.get("accept") or ""
    if "text/html" not in accept or visit.request.method != "GET":
        return replies.error_response(errors.Unauthorized("sign in to the dashboard"))
    path = visit.request.path if visit.request.path.startswith("/admin") else "/admin"
    query = urlencode(visit.query)
    return redirect(visit.url("/admin/login", next=path + ("?" + query if query else "")))


def _form(request: Request) -> dict[str, str]:
    raw = request.raw_body or b""
    if len(raw) > _MAX_FORM_BYTES:
        raise errors.InvalidInput(f"the form is larger than {_MAX_FORM_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput("the form is not valid UTF-8") from None
    return {name: value for name, value in parse_qsl(text, keep_blank_values=True) if "\x00" not in value}


def render(visit: Visit, template: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
           **context: Any) -> Response:  # fmt: skip
    body = _environment().get_template(template).render(visit=visit, session=visit.session, **context)
    headers = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    return Response(body=body, status_code=status, headers=headers)


def redirect(location: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body="", status_code=303, headers={"Location": location, **(headers or {})})


def list_query(visit: Visit, *, default_sort: str, page_size: int = 25) -> Any:
    """The list's ?search=&sort=&order=&offset=, a page at a time."""
    query = requests.list_query(visit.request, default_sort=default_sort)
    return dataclasses.replace(query, limit=page_size)


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters |= {"when": _when, "ago": _ago, "quote": quote}
    return environment


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    else:
        amount = f"{seconds} s"
    return f"in {amount}" if future else f"{amount} ago"
