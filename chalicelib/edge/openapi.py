"""The OpenAPI 3 document at /openapi.json, built from the declared endpoints and their models, and the /docs page."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chalicelib import __version__
from chalicelib.edge.endpoints import ENDPOINTS, Auth, Endpoint
from chalicelib.edge.models import Error

_DOCS_PAGE = Path(__file__).with_name("docs.html")
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_SECURITY = {
    Auth.APP: [{"appToken": []}],
    Auth.OPERATOR: [{"operatorKey": []}],
    Auth.ONBOARDING: [{"operatorKey": []}, {}],
    Auth.GITHUB: [{"githubSignature": []}],
}
_QUERY_SCHEMAS = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
    "before": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
    "order": {"type": "string", "enum": ["asc", "desc"]},
    "search": {"type": "string", "maxLength": 200},
    "sort": {"type": "string"},
}
_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Invalid request; `details` names the fields",
    401: "Missing or invalid credentials",
    404: "Not found",
    405: "This path does not take that method; see Allow",
    422: "GitHub refused the request",
    429: "Rate limited; see Retry-After",
    500: "Internal error, never with detail",
    503: "A dependency is unavailable; see Retry-After when present",
}


@functools.cache
def document() -> dict[str, Any]:
    """The document of every endpoint declared so far: call it once the route modules are imported (app.py)."""
    requests = {endpoint.request for endpoint in ENDPOINTS if endpoint.request}
    replies = {Error} | {model for endpoint in ENDPOINTS for model in endpoint.replies.values() if model}
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
            "schemas": _schemas(requests, mode="validation") | _schemas(replies, mode="serialization"),
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
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method] = _described(endpoint)
    return paths


def _described(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as an OpenAPI "operation object" (the spec's word; Docora's operations are bulk actions)."""
    words = endpoint.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": f"{endpoint.method}_{words}",
        "responses": _responses(endpoint),
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.auth in _SECURITY:
        operation["security"] = _SECURITY[endpoint.auth]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(endpoint.path)
    ]
    parameters += [{"name": name, "in": "query", "schema": _QUERY_SCHEMAS[name]} for name in endpoint.query]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        operation["requestBody"] = {"required": True, "content": _json_content(endpoint.request)}
    return operation


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in endpoint.replies.items():
        responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "")}
        if model is not None:
            responses[str(status)]["content"] = _json_content(model)
    for status in (*endpoint.errors, 500):
        error = {"description": _DESCRIPTIONS.get(status, ""), "content": _json_content(Error)}
        responses.setdefault(str(status), error)
    return responses


def _json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _schemas(models: set[type[BaseModel]], *, mode: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in sorted(models, key=lambda item: item.__name__):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found
