"""Every Lambda entrypoint. Each one parses its event, calls one service, shapes the reply."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice import Chalice, ConvertToMiddleware, Rate, Response

from chalicelib import __version__, admin_routes, config, errors, http, messages, openapi, schemas, wiring
from chalicelib.domain.apps import App, AppChanges
from chalicelib.observability import logger, metrics, tracer
from chalicelib.services import (
    access,
    app_accounts,
    delivering,
    github_events,
    health,
    onboarding,
    scanning,
    sweeping,
    watching,
)

app = Chalice(app_name="docora")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics(capture_cold_start_metric=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))
app.register_blueprint(admin_routes.admin, url_prefix="/api/admin")

_STARTED = time.monotonic()
_SCAN_QUEUE = config.queue_name_from_env("SCAN_QUEUE_NAME", config.Settings.scan_queue_name)
_DELIVERY_QUEUE = config.queue_name_from_env("DELIVERY_QUEUE_NAME", config.Settings.delivery_queue_name)
scan_batch = BatchProcessor(event_type=EventType.SQS)
delivery_batch = BatchProcessor(event_type=EventType.SQS)


@app.middleware("http")
def protocol_errors(event, get_response):
    response = http.uniform_errors(get_response(event))
    origin = wiring.deps().settings.cors_origin if response.status_code != 500 else None
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


@app.route("/health")
@http.translate_errors
def show_health():
    result = health.check(now=datetime.now(UTC), deps=wiring.deps())
    body = http.health_json(result, uptime_seconds=time.monotonic() - _STARTED)
    return http.json_response(body, 200 if result.healthy else 503)


@app.route("/version")
@http.translate_errors
def show_version():
    settings = wiring.deps().settings
    return http.json_response(
        {
            "version": __version__,
            "buildNumber": settings.build_number,
            "gitSha": settings.git_sha,
            "buildDate": settings.build_date,
        }
    )


@app.route("/openapi.json")
def show_openapi():
    return http.json_response(openapi.document())


@app.route("/docs")
def show_docs():
    return Response(body=openapi.docs_page(), headers={"Content-Type": "text/html; charset=utf-8"})


@app.route("/api/apps/onboard", methods=["POST"])
@http.translate_errors
def onboard_app():
    deps = wiring.deps()
    request = app.current_request
    access.limit_rate(f"ip:{http.client_ip(request)}", deps.settings.public_rate_limit_per_minute, deps=deps)
    access.may_onboard(http.bearer_token(request), deps=deps)
    body = http.parse_body(request, schemas.OnboardRequest, max_bytes=deps.settings.max_request_bytes)
    onboarded = onboarding.onboard(onboarding.Onboarding(**body.model_dump()), deps=deps)
    return http.json_response(http.onboarded_json(onboarded), 201)


@app.route("/api/repositories", methods=["POST"])
@http.translate_errors
def register_repository():
    deps, calling_app = wiring.deps(), _calling_app()
    body = http.parse_body(app.current_request, schemas.RegisterRequest, max_bytes=deps.settings.max_request_bytes)
    now = datetime.now(UTC)
    registered = watching.register(calling_app, watching.Registration(**body.model_dump()), now=now, deps=deps)
    return http.json_response(http.watch_json(registered.status, now=now), 201 if registered.created else 200)


@app.route("/api/repositories", methods=["GET"])
@http.translate_errors
def list_repositories():
    statuses = watching.list_watches(_calling_app(), deps=wiring.deps())
    now = datetime.now(UTC)
    return http.json_response({"repositories": [http.watch_json(status, now=now) for status in statuses]})


@app.route("/api/repositories/{repository_id}", methods=["GET"])
@http.translate_errors
def show_repository(repository_id):
    status = watching.show_watch(_calling_app(), repository_id, deps=wiring.deps())
    return http.json_response(http.watch_json(status, now=datetime.now(UTC)))


@app.route("/api/repositories/{repository_id}", methods=["DELETE"])
@http.translate_errors
def unwatch_repository(repository_id):
    watching.unwatch(_calling_app(), repository_id, deps=wiring.deps())
    return Response(body="", status_code=204)


@app.route("/api/repositories/{repository_id}/resync", methods=["POST"])
@http.translate_errors
def resync_repository(repository_id):
    watching.resync(_calling_app(), repository_id, deps=wiring.deps())
    return http.accepted("every file will be sent again, after deletes for what the repository no longer has")


@app.route("/api/apps/me", methods=["GET"])
@http.translate_errors
def show_own_app():
    return http.json_response(http.app_json(_calling_app()))


@app.route("/api/apps/me", methods=["PATCH"])
@http.translate_errors
def update_own_app():
    deps, calling_app = wiring.deps(), _calling_app()
    body = http.parse_body(app.current_request, schemas.AppProfileRequest, max_bytes=deps.settings.max_request_bytes)
    updated = app_accounts.update_profile(calling_app, AppChanges(**body.model_dump()), deps=deps)
    return http.json_response(http.app_json(updated))


@app.route("/api/apps/me", methods=["DELETE"])
@http.translate_errors
def delete_own_app():
    app_accounts.delete_app(_calling_app().id, deps=wiring.deps())
    return Response(body="", status_code=204)


@app.route("/api/apps/me/rotate-token", methods=["POST"])
@http.translate_errors
def rotate_own_token():
    token = app_accounts.rotate_token(_calling_app(), deps=wiring.deps())
    return http.json_response({"token": token})


@app.route("/api/apps/me/rotate-key", methods=["POST"])
@http.translate_errors
def rotate_own_key():
    key, until = app_accounts.rotate_key(_calling_app(), now=datetime.now(UTC), deps=wiring.deps())
    return http.json_response({"client_auth_key": key, "previous_key_valid_until": http.timestamp(until)})


# GitHub signs the raw body; any content type it sends is accepted and the signature decides.
@app.route(
    "/api/github/webhook", methods=["POST"], content_types=["application/json", "application/x-www-form-urlencoded"]
)
@http.translate_errors
def receive_github_webhook():
    request = app.current_request
    receipt = github_events.receive(
        request.headers.get("x-github-event"),
        request.headers.get("x-hub-signature-256"),
        request.raw_body or b"",
        now=datetime.now(UTC),
        deps=wiring.deps(),
    )
    body = {"outcome": receipt.outcome, "detail": receipt.detail, "repository_id": receipt.repository_id}
    return http.json_response(body, 202 if receipt.outcome == "scan_requested" else 200)


@app.route("/api/repositories/{repository_id}/deliveries", methods=["GET"])
@http.translate_errors
def list_repository_deliveries(repository_id):
    calling_app, page = _calling_app(), http.page(app.current_request)
    attempts = watching.delivery_attempts(
        calling_app, repository_id, limit=page.limit, before=page.before, deps=wiring.deps()
    )
    return http.json_response(http.attempts_json(attempts, page))


@app.route("/api/repositories/{repository_id}/token", methods=["PATCH"])
@http.translate_errors
def replace_repository_token(repository_id):
    deps, calling_app = wiring.deps(), _calling_app()
    body = http.parse_body(app.current_request, schemas.TokenRequest, max_bytes=deps.settings.max_request_bytes)
    status = watching.replace_token(calling_app, repository_id, body.github_token, deps=deps)
    return http.json_response(http.watch_json(status, now=datetime.now(UTC)))


# Partial batch failure needs ReportBatchItemFailures on the event source mapping, which Chalice
# cannot set (aws/chalice#2029): .chalice/merge-template.json adds it. maximum_concurrency caps the
# Postgres connections the consumer opens.
@app.on_sqs_message(queue=_SCAN_QUEUE, batch_size=5, maximum_concurrency=5)
def scan_repositories(event):
    return process_partial_response(
        event=event.to_dict(), record_handler=_scan_one, processor=scan_batch, context=event.context
    )


def _scan_one(record: SQSRecord) -> None:
    request = messages.ScanRequested.from_json(record.body)
    now = datetime.now(UTC)
    scanning.scan_repository(
        request.repository_id, request.requested_at, now=now, deps=wiring.deps(), refresh=request.refresh
    )


# One watch per message, so a slow receiver holds up only its own watch; ReportBatchItemFailures as above.
@app.on_sqs_message(queue=_DELIVERY_QUEUE, batch_size=1, maximum_concurrency=20)
def deliver_changes(event):
    return process_partial_response(
        event=event.to_dict(), record_handler=_deliver_one, processor=delivery_batch, context=event.context
    )


def _deliver_one(record: SQSRecord, lambda_context) -> None:  # Powertools passes the context by this name
    request = messages.DeliveryRequested.from_json(record.body)
    delivering.deliver_watch(
        request.app_id,
        request.repository_id,
        clock=lambda: datetime.now(UTC),
        time_left_ms=lambda_context.get_remaining_time_in_millis,
        random=random.random,
        deps=wiring.deps(),
    )


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event):
    sweeping.sweep(now=datetime.now(UTC), deps=wiring.deps())


# API Gateway answers a path that no route declares with its own 403 ("Missing Authentication Token"), and
# LocalStack does not render gateway response templates; this greedy route brings such paths here for the
# protocol's 404 (docs/protocol.md §2.1). chalice local matches segment by segment, so it keeps answering 403.
@app.route("/{proxy+}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@http.translate_errors
def unknown_path():
    raise errors.NotFound("no such path")


def _calling_app() -> App:
    deps = wiring.deps()
    calling_app = access.authenticate_app(http.bearer_token(app.current_request), deps=deps)
    access.limit_rate(f"app:{calling_app.id}", deps.settings.app_rate_limit_per_minute, deps=deps)
    return calling_app
