"""The operator API under /api/admin, as a Chalice blueprint: bearer ADMIN_API_KEY, thin routes like app.py.

It lives beside http.py rather than in app.py only to keep app.py readable; like http.py it is part of
the HTTP edge, and nothing in services, domain or adapters imports it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chalice import Blueprint, Response

from chalicelib import http, schemas, wiring
from chalicelib.services import access, app_accounts, onboarding, operations
from chalicelib.services import admin as operator

admin = Blueprint(__name__)


@admin.route("/overview")
@http.translate_errors
def show_overview():
    _operator()
    return http.json_response(operator.overview(now=datetime.now(UTC), deps=wiring.deps()))


@admin.route("/apps", methods=["GET"])
@http.translate_errors
def list_apps():
    return _list("apps", default_sort="created_at")


@admin.route("/apps", methods=["POST"])
@http.translate_errors
def onboard_app():
    deps = _operator()
    body = http.parse_body(admin.current_request, schemas.OnboardRequest, max_bytes=deps.settings.max_request_bytes)
    onboarded = onboarding.onboard(onboarding.Onboarding(**body.model_dump()), deps=deps)
    return http.json_response(http.onboarded_json(onboarded), 201)


@admin.route("/apps/{app_id}", methods=["GET"])
@http.translate_errors
def show_app(app_id):
    found, statuses = operator.app_detail(app_id, deps=_operator())
    now = datetime.now(UTC)
    body = {"app": http.app_json(found), "repositories": [http.watch_json(s, now=now) for s in statuses]}
    return http.json_response(body)


@admin.route("/apps/{app_id}", methods=["DELETE"])
@http.translate_errors
def delete_app(app_id):
    app_accounts.delete_app(app_id, deps=_operator())
    return Response(body="", status_code=204)


@admin.route("/apps/{app_id}/pause", methods=["POST"])
@http.translate_errors
def pause_app(app_id):
    operator.pause(app_id, deps=_operator())
    return http.accepted("deliveries to this app are paused")


@admin.route("/apps/{app_id}/resume", methods=["POST"])
@http.translate_errors
def resume_app(app_id):
    operator.resume(app_id, deps=_operator())
    return http.accepted("deliveries to this app resume")


@admin.route("/apps/{app_id}/retry-failed", methods=["POST"])
@http.translate_errors
def retry_failed_of_app(app_id):
    operation = operator.retry_failed(app_id, now=datetime.now(UTC), deps=_operator())
    return http.json_response(http.operation_json(operation), 202)


@admin.route("/apps/{app_id}/resync", methods=["POST"])
@http.translate_errors
def resync_app(app_id):
    operation = operator.resync_app(app_id, now=datetime.now(UTC), deps=_operator())
    return http.json_response(http.operation_json(operation), 202)


@admin.route("/retry-failed", methods=["POST"])
@http.translate_errors
def retry_failed_everywhere():
    operation = operator.retry_failed(None, now=datetime.now(UTC), deps=_operator())
    return http.json_response(http.operation_json(operation), 202)


@admin.route("/repositories", methods=["GET"])
@http.translate_errors
def list_repositories():
    return _list("repositories", default_sort="created_at")


@admin.route("/repositories/{repository_id}/reset-circuit", methods=["POST"])
@http.translate_errors
def reset_circuit(repository_id):
    operator.reset_circuit(repository_id, now=datetime.now(UTC), deps=_operator())
    return http.accepted("the circuit is closed and a scan was requested")


@admin.route("/watches/failed", methods=["GET"])
@http.translate_errors
def list_failed_watches():
    return _list("failed_watches", default_sort="updated_at")


@admin.route("/watches/{app_id}/{repository_id}/retry", methods=["POST"])
@http.translate_errors
def retry_watch(app_id, repository_id):
    operator.retry_watch(app_id, repository_id, deps=_operator())
    return http.accepted("the watch will be delivered again")


@admin.route("/watches/{app_id}/{repository_id}/resync", methods=["POST"])
@http.translate_errors
def resync_watch(app_id, repository_id):
    operator.resync_watch(app_id, repository_id, deps=_operator())
    return http.accepted("every file will be sent again")


@admin.route("/attempts", methods=["GET"])
@http.translate_errors
def list_attempts():
    return _list("attempts", default_sort="attempted_at")


@admin.route("/operations/{operation_id}", methods=["GET"])
@http.translate_errors
def show_operation(operation_id):
    return http.json_response(http.operation_json(operations.show(operation_id, deps=_operator())))


@admin.route("/operations/{operation_id}", methods=["DELETE"])
@http.translate_errors
def cancel_operation(operation_id):
    operation = operations.cancel(operation_id, now=datetime.now(UTC), deps=_operator())
    return http.json_response(http.operation_json(operation))


def _list(name: str, *, default_sort: str) -> Response:
    deps = _operator()
    query = http.list_query(admin.current_request, default_sort=default_sort)
    return http.json_response(http.list_json(operator.list_page(name, query, deps=deps), query))


def _operator():  # type: ignore[no-untyped-def]
    deps = wiring.deps()
    access.authenticate_operator(http.bearer_token(admin.current_request), deps=deps)
    return deps
