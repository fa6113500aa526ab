"""The operator API under /api/admin: bearer ADMIN_API_KEY, every route declared like the client API's."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib import wiring
from chalicelib.edge import client_routes, models, requests
from chalicelib.edge.endpoints import Auth, Routes
from chalicelib.services import admin, app_accounts, operations, watching

routes = Routes(__name__, prefix="/api/admin", tag="admin", auth=Auth.OPERATOR)
_LIST_QUERY = ("search", "sort", "order", "limit", "offset")
_NOT_FOUND = (401, 404)


@routes.endpoint(
    "GET",
    "/overview",
    summary="Counts, queue depths and recent failures",
    replies={200: models.OverviewResponse},
    errors=(401,),
)
def show_overview() -> models.OverviewResponse:
    return models.OverviewResponse(**admin.overview(now=datetime.now(UTC), deps=wiring.deps()))


@routes.endpoint(
    "GET", "/apps", summary="Apps", replies={200: models.ListResponse}, errors=(400, 401), query=_LIST_QUERY
)
def list_apps() -> models.ListResponse:
    return _list("apps", default_sort="created_at")


@routes.endpoint(
    "POST",
    "/apps",
    summary="Onboard an app",
    replies={201: models.OnboardResponse},
    request=models.OnboardRequest,
    errors=(400, 401),
)
def onboard_app(body: models.OnboardRequest) -> models.OnboardResponse:
    return client_routes.onboarded(body)


@routes.endpoint(
    "GET",
    "/apps/{app_id}",
    summary="One app and its watches",
    replies={200: models.AppDetailResponse},
    errors=_NOT_FOUND,
)
def show_app(app_id: str) -> models.AppDetailResponse:
    found, statuses = admin.app_detail(app_id, deps=wiring.deps())
    return models.AppDetailResponse.of(found, statuses, now=datetime.now(UTC))


@routes.endpoint(
    "PATCH",
    "/apps/{app_id}",
    summary="Set an app's requests in flight",
    replies={200: models.AppResponse},
    request=models.MaxInFlightRequest,
    description="From 1 (one at a time) to MAX_IN_FLIGHT_CEILING.",
    errors=(400, 401, 404),
)
def update_app(app_id: str, body: models.MaxInFlightRequest) -> models.AppResponse:
    ceiling = wiring.configs().accounts.max_in_flight_ceiling
    updated = admin.set_max_in_flight(app_id, body.max_in_flight, ceiling=ceiling, deps=wiring.deps())
    return models.AppResponse.of(updated)


@routes.endpoint(
    "DELETE",
    "/apps/{app_id}",
    summary="Delete an app with everything it owns",
    replies={204: None},
    description="Its watches, ledger and log, the repositories only it watched, and their contents in S3.",
    errors=_NOT_FOUND,
)
def delete_app(app_id: str) -> None:
    app_accounts.delete_app(app_id, deps=wiring.deps())


@routes.endpoint(
    "POST",
    "/apps/{app_id}/pause",
    summary="Pause deliveries to an app",
    replies={202: models.Accepted},
    errors=_NOT_FOUND,
)
def pause_app(app_id: str) -> models.Accepted:
    admin.pause(app_id, deps=wiring.deps())
    return models.Accepted.of("deliveries to this app are paused")


@routes.endpoint(
    "POST",
    "/apps/{app_id}/resume",
    summary="Resume deliveries to an app",
    replies={202: models.Accepted},
    errors=_NOT_FOUND,
)
def resume_app(app_id: str) -> models.Accepted:
    admin.resume(app_id, deps=wiring.deps())
    return models.Accepted.of("deliveries to this app resume")


@routes.endpoint(
    "POST",
    "/apps/{app_id}/retry-failed",
    summary="Retry every failed watch of an app",
    replies={202: models.OperationResponse},
    errors=_NOT_FOUND,
)
def retry_failed_of_app(app_id: str) -> models.OperationResponse:
    batch_size = wiring.configs().sweeping.batch_size
    operation = admin.retry_failed(app_id, now=datetime.now(UTC), batch_size=batch_size, deps=wiring.deps())
    return models.OperationResponse.of(operation)


@routes.endpoint(
    "POST",
    "/apps/{app_id}/resync",
    summary="Resync every watch of an app",
    replies={202: models.OperationResponse},
    errors=_NOT_FOUND,
)
def resync_app(app_id: str) -> models.OperationResponse:
    batch_size = wiring.configs().sweeping.batch_size
    operation = admin.resync_app(app_id, now=datetime.now(UTC), batch_size=batch_size, deps=wiring.deps())
    return models.OperationResponse.of(operation)


@routes.endpoint(
    "POST", "/retry-failed", summary="Retry every failed watch", replies={202: models.OperationResponse}, errors=(401,)
)
def retry_failed_everywhere() -> models.OperationResponse:
    batch_size = wiring.configs().sweeping.batch_size
    operation = admin.retry_failed(None, now=datetime.now(UTC), batch_size=batch_size, deps=wiring.deps())
    return models.OperationResponse.of(operation)


@routes.endpoint(
    "GET",
    "/repositories",
    summary="Repositories",
    replies={200: models.ListResponse},
    errors=(400, 401),
    query=_LIST_QUERY,
)
def list_repositories() -> models.ListResponse:
    return _list("repositories", default_sort="created_at")


@routes.endpoint(
    "POST",
    "/repositories/{repository_id}/reset-circuit",
    summary="Close a circuit and scan",
    replies={202: models.Accepted},
    errors=_NOT_FOUND,
)
def reset_circuit(repository_id: str) -> models.Accepted:
    admin.reset_circuit(repository_id, now=datetime.now(UTC), deps=wiring.deps())
    return models.Accepted.of("the circuit is closed and a scan was requested")


@routes.endpoint(
    "GET",
    "/watches/failed",
    summary="Failed watches",
    replies={200: models.ListResponse},
    errors=(400, 401),
    query=_LIST_QUERY,
)
def list_failed_watches() -> models.ListResponse:
    return _list("failed_watches", default_sort="updated_at")


@routes.endpoint(
    "POST",
    "/watches/{app_id}/{repository_id}/retry",
    summary="Retry one watch",
    replies={202: models.Accepted},
    errors=_NOT_FOUND,
)
def retry_watch(app_id: str, repository_id: str) -> models.Accepted:
    watching.retry(app_id, repository_id, deps=wiring.deps())
    return models.Accepted.of("the watch will be delivered again")


@routes.endpoint(
    "POST",
    "/watches/{app_id}/{repository_id}/resync",
    summary="Resync one watch",
    replies={202: models.Accepted},
    errors=_NOT_FOUND,
)
def resync_watch(app_id: str, repository_id: str) -> models.Accepted:
    watching.resync(app_id, repository_id, deps=wiring.deps())
    return models.Accepted.of("every file will be sent again")


@routes.endpoint(
    "GET",
    "/attempts",
    summary="Recent delivery attempts",
    replies={200: models.ListResponse},
    errors=(400, 401),
    query=_LIST_QUERY,
)
def list_attempts() -> models.ListResponse:
    return _list("attempts", default_sort="attempted_at")


@routes.endpoint(
    "GET",
    "/operations/{operation_id}",
    summary="Progress of a bulk action",
    replies={200: models.OperationResponse},
    errors=_NOT_FOUND,
)
def show_operation(operation_id: str) -> models.OperationResponse:
    return models.OperationResponse.of(operations.show(operation_id, deps=wiring.deps()))


@routes.endpoint(
    "DELETE",
    "/operations/{operation_id}",
    summary="Cancel a bulk action",
    replies={200: models.OperationResponse},
    errors=_NOT_FOUND,
)
def cancel_operation(operation_id: str) -> models.OperationResponse:
    return models.OperationResponse.of(operations.cancel(operation_id, now=datetime.now(UTC), deps=wiring.deps()))


def _list(name: str, *, default_sort: str) -> models.ListResponse:
    query = requests.list_query(routes.current_request, default_sort=default_sort)
    return models.ListResponse.of(admin.list_page(name, query, deps=wiring.deps()), query)
