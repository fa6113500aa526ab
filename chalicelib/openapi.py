"""The OpenAPI 3 document at /openapi.json, built from the request and response models, and the /docs page."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chalicelib import __version__, schemas

_DOCS_PAGE = Path(__file__).with_name("docs.html")
_SECURITY = {
    "app": [{"appToken": []}],
    "operator": [{"operatorKey": []}],
    "onboarding": [{"operatorKey": []}, {}],
    "github": [{"githubSignature": []}],
}


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
    query: tuple[str, ...] = ()


_LIST_QUERY = ("search", "sort", "order", "limit", "offset")
_QUERY_SCHEMAS = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
    "before": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
    "order": {"type": "string", "enum": ["asc", "desc"]},
    "search": {"type": "string", "maxLength": 200},
    "sort": {"type": "string"},
}


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
    Operation(
        "post",
        "/api/repositories/{repository_id}/resync",
        "Send every file again",
        "repositories",
        "app",
        {202: schemas.Accepted},
        description="Deletes for paths the repository no longer has go out first.",
        errors=(401, 404, 429),
    ),
    Operation(
        "get",
        "/api/repositories/{repository_id}/deliveries",
        "Delivery attempts, newest first",
        "repositories",
        "app",
        {200: schemas.DeliveryAttemptList},
        errors=(400, 401, 404, 429),
        query=("limit", "before"),
    ),
    Operation(
        "get", "/api/apps/me", "This app's profile", "apps", "app", {200: schemas.AppResponse}, errors=(401, 429)
    ),
    Operation(
        "patch",
        "/api/apps/me",
        "Change base_url or contact fields",
        "apps",
        "app",
        {200: schemas.AppResponse},
        schemas.AppProfileRequest,
        "base_url is checked against the SSRF guard.",
        (400, 401, 429),
    ),
    Operation(
        "delete",
        "/api/apps/me",
        "Delete this app and everything it owns",
        "apps",
        "app",
        {204: None},
        errors=(401, 429),
    ),
    Operation(
        "post",
        "/api/apps/me/rotate-token",
        "Replace the bearer token",
        "apps",
        "app",
        {200: schemas.RotatedTokenResponse},
        description="The old token stops working at once.",
        errors=(401, 429),
    ),
    Operation(
        "post",
        "/api/apps/me/rotate-key",
        "Replace the webhook signing key",
        "apps",
        "app",
        {200: schemas.RotatedKeyResponse},
        description="During the overlap (KEY_ROTATION_OVERLAP_MS) webhooks carry X-Docora-Signature made "
        "with the new key and X-Docora-Signature-Previous made with the old one.",
        errors=(401, 429),
    ),
    Operation(
        "post",
        "/api/github/webhook",
        "GitHub push webhook",
        "github",
        "github",
        {200: schemas.GitHubWebhookReceipt, 202: schemas.GitHubWebhookReceipt},
        description="Signed with X-Hub-Signature-256 under GITHUB_WEBHOOK_SECRET. A push to a watched "
        "branch starts its scan at once; other events and repositories are answered and ignored.",
        errors=(400, 401),
    ),
    Operation(
        "get",
        "/api/admin/overview",
        "Counts, queue depths and recent failures",
        "admin",
        "operator",
        {200: schemas.OverviewResponse},
        errors=(401,),
    ),
    Operation(
        "get",
        "/api/admin/apps",
        "Apps",
        "admin",
        "operator",
        {200: schemas.ListResponse},
        errors=(400, 401),
        query=_LIST_QUERY,
    ),
    Operation(
        "post",
        "/api/admin/apps",
        "Onboard an app",
        "admin",
        "operator",
        {201: schemas.OnboardResponse},
        schemas.OnboardRequest,
        errors=(400, 401),
    ),
    Operation(
        "get",
        "/api/admin/apps/{app_id}",
        "One app and its watches",
        "admin",
        "operator",
        {200: schemas.AppDetailResponse},
        errors=(401, 404),
    ),
    Operation(
        "delete",
        "/api/admin/apps/{app_id}",
        "Delete an app with everything it owns",
        "admin",
        "operator",
        {204: None},
        description="Its watches, ledger and log, the repositories only it watched, and their contents in S3.",
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/apps/{app_id}/pause",
        "Pause deliveries to an app",
        "admin",
        "operator",
        {202: schemas.Accepted},
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/apps/{app_id}/resume",
        "Resume deliveries to an app",
        "admin",
        "operator",
        {202: schemas.Accepted},
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/apps/{app_id}/retry-failed",
        "Retry every failed watch of an app",
        "admin",
        "operator",
        {202: schemas.OperationResponse},
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/apps/{app_id}/resync",
        "Resync every watch of an app",
        "admin",
        "operator",
        {202: schemas.OperationResponse},
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/retry-failed",
        "Retry every failed watch",
        "admin",
        "operator",
        {202: schemas.OperationResponse},
        errors=(401,),
    ),
    Operation(
        "get",
        "/api/admin/repositories",
        "Repositories",
        "admin",
        "operator",
        {200: schemas.ListResponse},
        errors=(400, 401),
        query=_LIST_QUERY,
    ),
    Operation(
        "post",
        "/api/admin/repositories/{repository_id}/reset-circuit",
        "Close a circuit and scan",
        "admin",
        "operator",
        {202: schemas.Accepted},
        errors=(401, 404),
    ),
    Operation(
        "get",
        "/api/admin/watches/failed",
        "Failed watches",
        "admin",
        "operator",
        {200: schemas.ListResponse},
        errors=(400, 401),
        query=_LIST_QUERY,
    ),
    Operation(
        "post",
        "/api/admin/watches/{app_id}/{repository_id}/retry",
        "Retry one watch",
        "admin",
        "operator",
        {202: schemas.Accepted},
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/admin/watches/{app_id}/{repository_id}/resync",
        "Resync one watch",
        "admin",
        "operator",
        {202: schemas.Accepted},
        errors=(401, 404),
    ),
    Operation(
        "get",
        "/api/admin/attempts",
        "Recent delivery attempts",
        "admin",
        "operator",
        {200: schemas.ListResponse},
        errors=(400, 401),
        query=_LIST_QUERY,
    ),
    Operation(
        "get",
        "/api/admin/operations/{operation_id}",
        "Progress of a bulk action",
        "admin",
        "operator",
        {200: schemas.OperationResponse},
        errors=(401, 404),
    ),
    Operation(
        "delete",
        "/api/admin/operations/{operation_id}",
        "Cancel a bulk action",
        "admin",
        "operator",
        {200: schemas.OperationResponse},
        errors=(401, 404),
    ),
    Operation("get", "/openapi.json", "This document", "service", "public", {200: None}),
    Operation(
        "get", "/docs", "A browsable page of this document, with no external assets", "service", "public", {200: None}
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
        "tags": [
            {"name": "service"},
            {"name": "apps"},
            {"name": "repositories"},
            {"name": "github"},
            {"name": "admin", "description": "The operator API: bearer ADMIN_API_KEY."},
        ],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {
                "appToken": {"type": "http", "scheme": "bearer", "description": "docora_ + 64 hex, from onboarding"},
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "ADMIN_API_KEY"},
                "githubSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Hub-Signature-256",
                    "description": "sha256= HMAC of the raw body under GITHUB_WEBHOOK_SECRET",
                },
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
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("app_id", "repository_id", "operation_id")
        if "{" + name + "}" in op.path
    ]
    parameters += [{"name": name, "in": "query", "schema": _QUERY_SCHEMAS[name]} for name in op.query]
    if parameters:
        operation["parameters"] = parameters
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
