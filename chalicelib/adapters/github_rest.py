"""GitHub's REST API over requests: the one place that knows GitHub's status codes and rate-limit headers."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.auth import AuthBase

from chalicelib import __version__, errors
from chalicelib.ports import GitHubRepository

_NOT_FOUND = "repository not found, or not readable with the given token"
_REFUSED = "GitHub rejected the token"
_RATE_LIMITED = "GitHub rate limit reached"
_NO_ANSWER = "GitHub did not answer"
_MAX_REDIRECTS = 3
_MIN_WAIT_SECONDS, _MAX_WAIT_SECONDS = 1, 3600
# GitHub's documented advice for a secondary rate limit that comes without headers: wait at least a minute.
_DEFAULT_WAIT_SECONDS = 60
# No GitHub owner, repository or branch can be named like this, and urllib3 would collapse them as dot segments.
_UNNAMEABLE = frozenset({"", ".", ".."})
# Anything else could split the header, and http.client would echo the token in its ValueError.
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")


class GitHubRest:
    def __init__(
        self,
        api_url: str,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._origin = _origin(self._api_url)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._now = now
        # Per request rather than on the session, which the caller may share with other adapters.
        self._headers = {
            "User-Agent": f"Docora/{__version__}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def repository(self, owner: str, name: str, token: str | None) -> GitHubRepository:
        response = self._get(_repository_path(owner, name), token)
        if response.status_code != 200:
            raise self._failure(response)
        body = _json_object(response)
        is_private, default_branch = body.get("private"), body.get("default_branch")
        if not isinstance(is_private, bool) or not isinstance(default_branch, str) or not default_branch:
            raise errors.Unavailable(_NO_ANSWER)
        return GitHubRepository(owner=owner, name=name, is_private=is_private, default_branch=default_branch)

    def has_branch(self, owner: str, name: str, branch: str, token: str | None) -> bool:
        path = _repository_path(owner, name)
        if branch in _UNNAMEABLE:
            return False
        response = self._get(f"{path}/branches/{quote(branch, safe='')}", token)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._failure(response)

    def _get(self, path: str, token: str | None) -> requests.Response:
        if token and not _HEADER_SAFE_TOKEN.fullmatch(token):
            raise errors.Unprocessable(_REFUSED)
        url = self._api_url + path
        # Followed by hand: GitHub answers 301 for renamed repositories, and the token may only go back to GitHub.
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                response = self._session.get(
                    url, headers=self._headers, auth=_BearerToken(token), timeout=self._timeout, allow_redirects=False
                )
            except requests.RequestException as error:
                raise errors.Unavailable(_NO_ANSWER) from error
            if not response.is_redirect:
                return response
            response.close()
            url = urljoin(url, response.headers["Location"])
            if _origin(url) != self._origin:
                raise errors.Unavailable("GitHub redirected away from its API")
        raise errors.Unavailable("GitHub redirected too many times")

    def _failure(self, response: requests.Response) -> errors.ServiceError:
        status, headers = response.status_code, response.headers
        if status == 401:
            return errors.Unprocessable(_REFUSED)
        if status == 429 or (status == 403 and _is_rate_limited(headers)):
            return errors.Unavailable(_RATE_LIMITED, retry_after=self._seconds_to_wait(headers))
        if status in (403, 404):
            return errors.NotFound(_NOT_FOUND)
        return errors.Unavailable(_NO_ANSWER)

    def _seconds_to_wait(self, headers: Mapping[str, str]) -> int:
        seconds = _retry_after_seconds(headers.get("Retry-After"), self._now())
        if seconds is None:
            seconds = _reset_seconds(headers.get("x-ratelimit-reset"), self._now())
        if seconds is None:
            seconds = _DEFAULT_WAIT_SECONDS
        return max(_MIN_WAIT_SECONDS, min(_MAX_WAIT_SECONDS, math.ceil(seconds)))


class _BearerToken(AuthBase):
    """Passed on every request, even without a token, because without an `auth` requests reads ~/.netrc."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def _repository_path(owner: str, name: str) -> str:
    if owner in _UNNAMEABLE or name in _UNNAMEABLE:
        raise errors.NotFound(_NOT_FOUND)
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _json_object(response: requests.Response) -> dict[str, object]:
    try:
        body = response.json()
    except requests.JSONDecodeError as error:
        raise errors.Unavailable(_NO_ANSWER) from error
    if not isinstance(body, dict):
        raise errors.Unavailable(_NO_ANSWER)
    return body


def _is_rate_limited(headers: Mapping[str, str]) -> bool:
    return headers.get("x-ratelimit-remaining") == "0" or "Retry-After" in headers


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After is either whole seconds (what GitHub sends) or an HTTP date."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": HTTP dates are always UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def _reset_seconds(value: str | None, now: float) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value) - now
