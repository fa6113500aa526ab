"""Writing replies: a reply model as compact JSON, and every error as the protocol's {error, message, details?}.

This is the one translation of ServiceErrors into HTTP (docs/protocol.md §2.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalice.app import Response
from pydantic import BaseModel

from chalicelib import errors
from chalicelib.edge.models import Error, FieldErrorBody

_CODE_FOR: dict[type[errors.ServiceError], tuple[int, str]] = {
    errors.InvalidInput: (400, "invalid_request"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Unprocessable: (422, "unprocessable"),
    errors.RateLimited: (429, "rate_limited"),
    errors.Unavailable: (503, "unavailable"),
    errors.GitFailure: (503, "unavailable"),
}
_CODE_FOR_STATUS = {status: code for status, code in _CODE_FOR.values()} | {
    405: "method_not_allowed",
    415: "invalid_request",
}


def json_response(
    body: BaseModel | Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    # Fields a reply model was not given are left out (the key Docora generated only when it did).
    text = body.model_dump_json(exclude_unset=True) if isinstance(body, BaseModel) else _compact(body)
    return Response(
        body=text,
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
    )


def error_body(code: str, message: str, details: list[errors.FieldError] | None = None) -> Error:
    if details:
        fields = [FieldErrorBody(field=detail.field, message=detail.message) for detail in details]
        return Error(error=code, message=message, details=fields)  # type: ignore[arg-type]  # codes are the Literal's
    return Error(error=code, message=message)  # type: ignore[arg-type]


def error_response(error: errors.ServiceError) -> Response:
    status, code = _CODE_FOR[type(error)]
    details = error.details if isinstance(error, errors.InvalidInput) else None
    retry_after = getattr(error, "retry_after", None)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return json_response(error_body(code, str(error), details), status, headers)


def uniform_errors(response: Response) -> Response:
    """Give Chalice's own error replies (415, an unhandled 500) the protocol's error body.

    Chalice answers an exception it does not know with a generic 500 before any middleware runs,
    so the traceback is logged by Chalice and nothing internal reaches the caller.
    """
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = _CODE_FOR_STATUS.get(response.status_code, "internal")
        message = "internal error" if code == "internal" else str(body["Message"])
        response.body = error_body(code, message).model_dump(exclude_unset=True)
    return response


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
