"""The HTTP edge: request parsing, response shaping, and the one translation of errors into HTTP."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib import errors
from chalicelib.domain.apps import App
from chalicelib.domain.deliveries import Attempt
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.repositories import WatchStatus
from chalicelib.services.health import Health
from chalicelib.services.onboarding import OnboardedApp

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)

_CODE_FOR: dict[type[errors.ServiceError], tuple[int, str]] = {
    errors.InvalidInput: (400, "invalid_request"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Unprocessable: (422, "unprocessable"),
    errors.RateLimited: (429, "rate_limited"),
    errors.Unavailable: (503, "unavailable"),
}
_CODE_FOR_STATUS = {status: code for status, code in _CODE_FOR.values()} | {
    405: "method_not_allowed",
    415: "invalid_request",
}
_FIELD_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "string_pattern_mismatch": "has an invalid format",
    "model_type": "must be a JSON object",
}


def translate_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer ServiceErrors with their status and the protocol's error body."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except errors.ServiceError as error:
            return error_response(error)

    return wrapper


def error_response(error: errors.ServiceError) -> Response:
    status, code = _CODE_FOR[type(error)]
    body: dict[str, Any] = {"error": code, "message": str(error)}
    if isinstance(error, errors.InvalidInput) and error.details:
        body["details"] = [{"field": detail.field, "message": detail.message} for detail in error.details]
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json_response(body, status, headers)


def uniform_errors(response: Response) -> Response:
    """Give Chalice's own error replies (405, 415, unhandled 500) the protocol's error body.

    Chalice answers an exception it does not know with a generic 500 before any middleware runs,
    so the traceback is logged by Chalice and nothing internal reaches the caller.
    """
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        status = response.status_code
        code = _CODE_FOR_STATUS.get(status, "internal")
        message = "internal error" if code == "internal" else str(body["Message"])
        response.body = {"error": code, "message": message}
    return response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
    )


def parse_body(request: Request, model: type[Model], *, max_bytes: int) -> Model:
    """The request's JSON body as `model`, or InvalidInput naming every field at fault."""
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise errors.InvalidInput(f"request body is larger than {max_bytes} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise errors.InvalidInput("request body is not valid UTF-8") from None
    except RecursionError:
        raise errors.InvalidInput("request body is nested too deeply") from None
    except ValueError:
        raise errors.InvalidInput("request body is not valid JSON") from None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        details = [_field_error(item) for item in error.errors(include_url=False, include_input=False)]
        raise errors.InvalidInput("request body is invalid", details) from None


def _field_error(item: Any) -> errors.FieldError:
    field = ".".join(str(part) for part in item["loc"]) or "body"
    return errors.FieldError(field, _FIELD_MESSAGES.get(item["type"], item["msg"]))


def bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def client_ip(request: Request) -> str:
    return str((request.context.get("identity") or {}).get("sourceIp") or "unknown")


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def onboarded_json(onboarded: OnboardedApp) -> dict[str, Any]:
    body = {"app_id": onboarded.app.id, "token": onboarded.token}
    if onboarded.generated_client_auth_key is not None:
        body["client_auth_key"] = onboarded.generated_client_auth_key
    return body | {"created_at": timestamp(onboarded.app.created_at)}


def watch_json(status: WatchStatus, *, now: datetime) -> dict[str, Any]:
    repository, watch = status.repository, status.watch
    circuit_open = repository.circuit_open_until is not None and repository.circuit_open_until > now
    return {
        "repository_id": repository.id,
        "github_url": repository.github_url,
        "owner": repository.owner,
        "name": repository.name,
        "branch": repository.branch,
        "is_private": repository.is_private,
        "status": watch.status,
        "last_commit_sha": watch.last_commit_sha,
        "last_synced_at": timestamp(watch.last_synced_at),
        "last_checked_at": timestamp(repository.last_checked_at),
        "files_total": status.files_total,
        "files_delivered": status.files_delivered,
        "files_pending": status.files_pending,
        "attempts": watch.attempts,
        "last_error": watch.last_error or repository.last_error,
        "next_attempt_at": timestamp(watch.next_attempt_at),
        "circuit": {
            "status": "open" if circuit_open else "closed",
            "consecutive_failures": repository.consecutive_failures,
            "open_until": timestamp(repository.circuit_open_until) if circuit_open else None,
        },
        "deliveries": "paused" if status.deliveries_paused else "active",
        "paused_reason": status.paused_reason,
        "created_at": timestamp(watch.created_at),
    }


def health_json(health: Health, *, uptime_seconds: float) -> dict[str, Any]:
    return {
        "status": "ok" if health.healthy else "degraded",
        "timestamp": timestamp(health.checked_at),
        "uptime": round(uptime_seconds, 3),
        "checks": health.checks,
    }


@dataclass(frozen=True)
class Page:
    limit: int
    before: int | None


def page(request: Request, *, default_limit: int = 50, max_limit: int = 200) -> Page:
    """`?limit=&before=` of a newest-first list; `before` is the last id of the previous page."""
    query = request.query_params or {}
    return Page(
        limit=_query_int(query, "limit", default_limit, low=1, high=max_limit),
        before=_query_int(query, "before", None, low=1, high=2**62),
    )


def _query_int(query: Any, name: str, default: int | None, *, low: int, high: int) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise errors.InvalidInput.field(name, f"must be a whole number from {low} to {high}")
    return int(value)


def attempts_json(attempts: list[Attempt], page: Page) -> dict[str, Any]:
    items = [
        {
            "id": attempt.id,
            "path": attempt.path,
            "event": attempt.event,
            "delivery_id": attempt.delivery_id,
            "attempt": attempt.attempt,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
            "attempted_at": timestamp(attempt.attempted_at),
        }
        for attempt in attempts
    ]
    next_before = attempts[-1].id if len(attempts) == page.limit else None
    return {"deliveries": items, "next_before": next_before}


def app_json(app: App) -> dict[str, Any]:
    return {
        "app_id": app.id,
        "app_name": app.app_name,
        "email": app.email,
        "website": app.website,
        "description": app.description,
        "base_url": app.base_url,
        "deliveries": app.delivery_state,
        "paused_reason": app.paused_reason,
        "created_at": timestamp(app.created_at),
    }


def operation_json(operation: Operation) -> dict[str, Any]:
    return {
        "operation_id": operation.id,
        "kind": operation.kind,
        "app_id": operation.app_id,
        "status": operation.status,
        "total": operation.total,
        "done": operation.done,
        "created_at": timestamp(operation.created_at),
        "updated_at": timestamp(operation.updated_at),
    }


def accepted(message: str) -> Response:
    return json_response({"status": "accepted", "message": message}, 202)


def list_query(request: Request, *, default_sort: str) -> ListQuery:
    """`?search=&sort=&order=asc|desc&limit=&offset=` of an operator list."""
    query = request.query_params or {}
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise errors.InvalidInput.field("order", "must be asc or desc")
    search = query.get("search")
    if search is not None and len(search) > 200:
        raise errors.InvalidInput.field("search", "must be at most 200 characters")
    return ListQuery(
        search=search or None,
        sort=query.get("sort", default_sort),
        descending=order == "desc",
        limit=_query_int(query, "limit", 50, low=1, high=200) or 50,
        offset=_query_int(query, "offset", 0, low=0, high=10**9) or 0,
    )


def list_json(page: ListPage, query: ListQuery) -> dict[str, Any]:
    items = [{key: _plain(value) for key, value in item.items()} for item in page.items]
    return {"items": items, "total": page.total, "limit": query.limit, "offset": query.offset}


def _plain(value: Any) -> Any:
    return timestamp(value) if isinstance(value, datetime) else value
