"""The OpenAPI 3 document at /openapi.json, built from the request and response models, and the /docs page."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chalicelib import __version__, schemas

_DOCS_PAGE = Path(__file__).with_name("docs.html")
_SECURITY = {"app": [{"appToken": []}], "operator": [{"operatorKey": []}], "onboarding": [{"operatorKey": []}, {}]}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    auth: str  # public, app, operator, onboarding (operator key unless ONBOARDING_MODE=open)
    responses: dict[int, type[BaseModel] | None]
    request: type[BaseModel] | None = None
    description: str = ""
    errors: tuple[int, ...] = field(default=())


OPERATIONS = (
    Operation(
        "get",
        "/health",
        "Health of Docora and its dependencies",
        "service",
        "public",
        {200: schemas.HealthResponse, 503: schemas.HealthResponse},
    ),
    Operation("get", "/version", "Version and build", "service", "public", {200: schemas.VersionResponse}),
    Operation(
        "post",
        "/api/apps/onboard",
        "Register a client app",
        "apps",
        "onboarding",
        {201: schemas.OnboardResponse},
        schemas.OnboardRequest,
        "The bearer token, and the signing key when Docora generates it, are shown only in this reply.",
        (400, 401, 429),
    ),
    Operation(
        "post",
        "/api/repositories",
        "Watch a repository",
        "repositories",
        "app",
        {200: schemas.WatchResponse, 201: schemas.WatchResponse},
        schemas.RegisterRequest,
        "Checked against GitHub first. Registering the same repository again returns the existing watch "
        "with 200. The first sync starts at once.",
        (400, 401, 404, 422, 429, 503),
    ),
    Operation(
        "get",
        "/api/repositories",
        "This app's watches and their sync status",
        "repositories",
        "app",
        {200: schemas.WatchListResponse},
        errors=(401, 429),
    ),
    Operation(
        "get",
        "/api/repositories/{repository_id}",
        "One watch: status, progress, last error, circuit",
        "repositories",
        "app",
        {200: schemas.WatchResponse},
        errors=(401, 404, 429),
    ),
    Operation(
        "delete",
        "/api/repositories/{repository_id}",
        "Stop watching",
        "repositories",
        "app",
        {204: None},
        errors=(401, 404, 429),
    ),
    Operation(
        "patch",
        "/api/repositories/{repository_id}/token",
        "Replace the GitHub token",
        "repositories",
        "app",
        {200: schemas.WatchResponse},
        schemas.TokenRequest,
        "Validated against GitHub before it is stored.",
        (400, 401, 404, 422, 429, 503),
    ),
)


@functools.cache
def document() -> dict[str, Any]:
    models = {schemas.Error} | {op.request for op in OPERATIONS if op.request}
    models |= {model for op in OPERATIONS for model in op.responses.values() if model}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Docora",
            "version": __version__,
            "description": "Watches GitHub repositories and pushes every file change to client apps as "
            "signed webhooks. Errors are always {error, message, details?}.",
        },
        "tags": [{"name": "service"}, {"name": "apps"}, {"name": "repositories"}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {
                "appToken": {"type": "http", "scheme": "bearer", "description": "docora_ + 64 hex, from onboarding"},
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "ADMIN_API_KEY"},
            },
        },
    }


def docs_page() -> str:
    return _DOCS_PAGE.read_text()


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return paths


def _operation(op: Operation) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
        "responses": _responses(op),
    }
    if op.description:
        operation["description"] = op.description
    if op.auth in _SECURITY:
        operation["security"] = _SECURITY[op.auth]
    if "{repository_id}" in op.path:
        operation["parameters"] = [
            {"name": "repository_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if op.request is not None:
        operation["requestBody"] = {"required": True, "content": _json_content(op.request)}
    return operation


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in op.responses.items():
        responses[str(status)] = {"description": _describe(status)}
        if model is not None:
            responses[str(status)]["content"] = _json_content(model)
    for status in (*op.errors, 500):
        responses.setdefault(str(status), {"description": _describe(status), "content": _json_content(schemas.Error)})
    return responses


def _json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _schemas(models: set[type[BaseModel]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in sorted(models, key=lambda item: item.__name__):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Invalid request; `details` names the fields",
    401: "Missing or invalid credentials",
    404: "Not found",
    422: "GitHub refused the request",
    429: "Rate limited; see Retry-After",
    500: "Internal error, never with detail",
    503: "A dependency is unavailable; see Retry-After when present",
}


def _describe(status: int) -> str:
    return _DESCRIPTIONS.get(status, "")
