"""The service's own routes: health, version, the API's description, and GitHub's push webhook."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from chalice import Response

from chalicelib import __version__, errors, wiring
from chalicelib.edge import models, openapi, page_headers, replies
from chalicelib.edge.endpoints import Auth, Reply, Routes
from chalicelib.services import github_events, health

routes = Routes(__name__)
_STARTED = time.monotonic()


@routes.endpoint(
    "GET",
    "/health",
    summary="Health of Docora and its dependencies",
    tag="service",
    auth=Auth.PUBLIC,
    replies={200: models.HealthResponse, 503: models.HealthResponse},
)
def show_health() -> Reply:
    result = health.check(now=datetime.now(UTC), deps=wiring.deps())
    body = models.HealthResponse.of(result, uptime_seconds=time.monotonic() - _STARTED)
    return Reply(body, 200 if result.healthy else 503)


@routes.endpoint(
    "GET",
    "/version",
    summary="Version and build",
    tag="service",
    auth=Auth.PUBLIC,
    replies={200: models.VersionResponse},
)
def show_version() -> models.VersionResponse:
    config = wiring.configs().api
    return models.VersionResponse(
        version=__version__, buildNumber=config.build_number, gitSha=config.git_sha, buildDate=config.build_date
    )


@routes.endpoint("GET", "/openapi.json", summary="This document", tag="service", auth=Auth.PUBLIC, replies={200: None})
def show_openapi() -> Response:
    return replies.json_response(openapi.document())


@routes.endpoint(
    "GET",
    "/docs",
    summary="A browsable page of this document, with no external assets",
    tag="service",
    auth=Auth.PUBLIC,
    replies={200: None},
)
def show_docs() -> Response:
    headers = {"Content-Type": "text/html; charset=utf-8", **page_headers.SECURITY_HEADERS}
    return Response(body=openapi.docs_page(), headers=headers)


# The /docs page's files: Swagger UI, vendored, and the script that starts it. Files, not API operations.
@routes.blueprint.route("/docs/assets/{name}", methods=["GET"])
def serve_docs_asset(name: str) -> Response:
    return page_headers.asset(name)


# GitHub signs the raw body; any content type it sends is accepted and the signature decides.
@routes.endpoint(
    "POST",
    "/api/github/webhook",
    summary="GitHub push webhook",
    tag="github",
    auth=Auth.GITHUB,
    replies={200: models.GitHubWebhookReceipt, 202: models.GitHubWebhookReceipt},
    description="Signed with X-Hub-Signature-256 under GITHUB_WEBHOOK_SECRET. A push to a watched "
    "branch starts its scan at once; other events and repositories are answered and ignored.",
    errors=(400, 401),
    content_types=("application/json", "application/x-www-form-urlencoded"),
)
def receive_github_webhook() -> Reply:
    request = routes.current_request
    receipt = github_events.receive(
        request.headers.get("x-github-event"),
        request.headers.get("x-hub-signature-256"),
        request.raw_body or b"",
        now=datetime.now(UTC),
        secret=wiring.configs().api.github_webhook_secret,
        deps=wiring.deps(),
    )
    return Reply(models.GitHubWebhookReceipt.of(receipt), 202 if receipt.outcome == "scan_requested" else 200)


# API Gateway answers a path that no route declares with its own 403 ("Missing Authentication Token"), and
# LocalStack does not render gateway response templates; this greedy route brings such paths here for the
# protocol's 404 (docs/protocol.md §2.1). chalice local matches segment by segment, so it keeps answering 403.
@routes.blueprint.route("/{proxy+}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_path() -> Response:
    return replies.error_response(errors.NotFound("no such path"))
