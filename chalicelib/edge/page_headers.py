"""What every HTML page Docora serves sends with it (the dashboard, /docs), and the static files those pages load."""

from __future__ import annotations

import functools
from pathlib import Path

from chalice import Response

from chalicelib import errors
from chalicelib.edge import replies

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = Path(__file__).parent / "static"
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
# Each file a page may load, by the name in its URL: nothing else under static/ is served.
ASSETS = {
    "dashboard.js": ("dashboard.js", _JS),
    "dashboard.css": ("dashboard.css", _CSS),
    "docs.js": ("docs.js", _JS),
    "swagger-ui-bundle.js": ("swagger-ui/swagger-ui-bundle.js", _JS),
    "swagger-ui.css": ("swagger-ui/swagger-ui.css", _CSS),
}


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def asset(name: str) -> Response:
    if name not in ASSETS:
        return replies.error_response(errors.NotFound("no such file"))
    path, content_type = ASSETS[name]
    headers = {**SECURITY_HEADERS, "Content-Type": content_type, "Cache-Control": "public, max-age=3600"}
    return Response(body=_read(path), status_code=200, headers=headers)


@functools.cache
def _read(path: str) -> str:
    return (_STATIC / path).read_text(encoding="utf-8")
