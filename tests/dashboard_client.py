"""A browser in the dashboard's tests, through chalice.test.Client: it keeps cookies and sends forms with tokens."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from chalice.test import Client

from docora_local.harness.settings import TEST_ADMIN_API_KEY

FORM = "application/x-www-form-urlencoded"
_HIDDEN = re.compile(r'name="(login_token|csrf_token)" value="([^"]*)"')


class Browser:
    def __init__(self, client: Client, client_ip: str = "198.51.100.7") -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.csrf_token: str | None = None

    def get(self, path: str, **headers: str) -> Any:
        response = self.client.http.get(path, headers={"Accept": "text/html", **self._cookie_header(), **headers})
        self._keep(response)
        return response

    def post(self, path: str, form: dict[str, str] | None = None, *, csrf: bool = True) -> Any:
        fields = dict(form or {})
        if csrf and self.csrf_token:
            fields.setdefault("csrf_token", self.csrf_token)
        headers = {"Content-Type": FORM, "Accept": "text/html", **self._cookie_header()}
        response = self.client.http.post(path, headers=headers, body=urlencode(fields))
        self._keep(response)
        return response

    def sign_in(self, key: str = TEST_ADMIN_API_KEY, next_path: str = "") -> Any:
        page = self.get("/admin/login")
        login_token = dict(_HIDDEN.findall(page.body.decode()))["login_token"]
        response = self.post("/admin/login", {"login_token": login_token, "key": key, "next": next_path}, csrf=False)
        if response.status_code == 303:
            self.get("/admin")
        return response

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, response.body
        return response.body.decode()

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _keep(self, response: Any) -> None:
        cookie = response.headers.get("Set-Cookie") or response.headers.get("set-cookie")
        if cookie:
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if response.headers.get("Content-Type", "").startswith("text/html"):
            found = dict(_HIDDEN.findall(response.body.decode()))
            if "csrf_token" in found:
                self.csrf_token = found["csrf_token"]
