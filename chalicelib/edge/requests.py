"""Reading requests: JSON bodies into their models, credentials, the caller's address, and list windows.

Everything a caller sends is checked here or by the models, and refused with InvalidInput naming the field; nothing
malformed reaches a service, and nothing reaches Postgres that it would refuse (a NUL character, say).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib import errors
from chalicelib.domain.operations import ListQuery

Model = TypeVar("Model", bound=BaseModel)

_FIELD_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "string_pattern_mismatch": "has an invalid format",
    "model_type": "must be a JSON object",
}
_MAX_SEARCH_CHARACTERS = 200


@dataclass(frozen=True)
class Page:
    limit: int
    before: int | None


def parse_body(request: Request, model: type[Model], *, max_bytes: int) -> Model:
    """The request's JSON body as `model`, or InvalidInput naming every field at fault."""
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise errors.InvalidInput(f"request body is larger than {max_bytes} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_without_duplicate_keys)
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


def bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def client_ip(request: Request) -> str:
    return str((request.context.get("identity") or {}).get("sourceIp") or "unknown")


def page(request: Request, *, default_limit: int = 50, max_limit: int = 200) -> Page:
    """`?limit=&before=` of a newest-first list; `before` is the last id of the previous page."""
    query = request.query_params or {}
    return Page(
        limit=_query_int(query, "limit", default_limit, low=1, high=max_limit) or default_limit,
        before=_query_int(query, "before", None, low=1, high=2**62),
    )


def list_query(request: Request, *, default_sort: str) -> ListQuery:
    """`?search=&sort=&order=asc|desc&limit=&offset=` of an operator list."""
    query = request.query_params or {}
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise errors.InvalidInput.field("order", "must be asc or desc")
    search = query.get("search")
    if search is not None and len(search) > _MAX_SEARCH_CHARACTERS:
        raise errors.InvalidInput.field("search", f"must be at most {_MAX_SEARCH_CHARACTERS} characters")
    if search is not None and "\x00" in search:
        raise errors.InvalidInput.field("search", "must not contain NUL characters")
    return ListQuery(
        search=search or None,
        sort=query.get("sort", default_sort),
        descending=order == "desc",
        limit=_query_int(query, "limit", 50, low=1, high=200) or 50,
        offset=_query_int(query, "offset", 0, low=0, high=10**9) or 0,
    )


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice: which one was meant is anyone's guess."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise errors.InvalidInput.field(key, "is given more than once")
        seen.add(key)
    return dict(pairs)


def _field_error(item: Any) -> errors.FieldError:
    field = ".".join(str(part) for part in item["loc"]) or "body"
    return errors.FieldError(field, _FIELD_MESSAGES.get(item["type"], item["msg"]))


def _query_int(query: Any, name: str, default: int | None, *, low: int, high: int) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise errors.InvalidInput.field(name, f"must be a whole number from {low} to {high}")
    return int(value)
