"""The client API: onboarding, an app's watches of repositories, and the app managing itself."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib import wiring
from chalicelib.domain.apps import App, AppChanges
from chalicelib.edge import models, requests
from chalicelib.edge.endpoints import Auth, Reply, Routes
from chalicelib.services import app_accounts, onboarding, watching

routes = Routes(__name__)


@routes.endpoint(
    "POST",
    "/api/apps/onboard",
    summary="Register a client app",
    tag="apps",
    auth=Auth.ONBOARDING,
    replies={201: models.OnboardResponse},
    request=models.OnboardRequest,
    description="The bearer token, and the signing key when Docora generates it, are shown only in this reply.",
    errors=(400, 401, 429),
)
def onboard_app(body: models.OnboardRequest) -> models.OnboardResponse:
    return onboarded(body)


def onboarded(body: models.OnboardRequest) -> models.OnboardResponse:
    """Onboarding, whether the app asks (ONBOARDING_MODE=open) or the operator does it: one use case, one reply."""
    allow_private = wiring.configs().api.allow_private_targets
    request = onboarding.Onboarding(**body.model_dump())
    onboarded_app = onboarding.onboard(request, allow_private_targets=allow_private, deps=wiring.deps())
    return models.OnboardResponse.of(onboarded_app)


@routes.endpoint(
    "POST",
    "/api/repositories",
    summary="Watch a repository",
    tag="repositories",
    auth=Auth.APP,
    replies={200: models.WatchResponse, 201: models.WatchResponse},
    request=models.RegisterRequest,
    description="Checked against GitHub first. Registering the same repository again returns the existing watch "
    "with 200. The first sync starts at once.",
    errors=(400, 401, 404, 422, 429, 503),
)
def register_repository(caller: App, body: models.RegisterRequest) -> Reply:
    now = datetime.now(UTC)
    registered = watching.register(caller, watching.Registration(**body.model_dump()), now=now, deps=wiring.deps())
    return Reply(models.WatchResponse.of(registered.status, now=now), 201 if registered.created else 200)


@routes.endpoint(
    "GET",
    "/api/repositories",
    summary="This app's watches and their sync status",
    tag="repositories",
    auth=Auth.APP,
    replies={200: models.WatchListResponse},
    errors=(401, 429),
)
def list_repositories(caller: App) -> models.WatchListResponse:
    statuses = watching.list_watches(caller, deps=wiring.deps())
    return models.WatchListResponse.of(statuses, now=datetime.now(UTC))


@routes.endpoint(
    "GET",
    "/api/repositories/{repository_id}",
    summary="One watch: status, progress, last error, circuit",
    tag="repositories",
    auth=Auth.APP,
    replies={200: models.WatchResponse},
    errors=(401, 404, 429),
)
def show_repository(caller: App, repository_id: str) -> models.WatchResponse:
    status = watching.show_watch(caller, repository_id, deps=wiring.deps())
    return models.WatchResponse.of(status, now=datetime.now(UTC))


@routes.endpoint(
    "DELETE",
    "/api/repositories/{repository_id}",
    summary="Stop watching",
    tag="repositories",
    auth=Auth.APP,
    replies={204: None},
    errors=(401, 404, 429),
)
def unwatch_repository(caller: App, repository_id: str) -> None:
    watching.unwatch(caller, repository_id, deps=wiring.deps())


@routes.endpoint(
    "PATCH",
    "/api/repositories/{repository_id}/token",
    summary="Replace the GitHub token",
    tag="repositories",
    auth=Auth.APP,
    replies={200: models.WatchResponse},
    request=models.TokenRequest,
    description="Validated against GitHub before it is stored.",
    errors=(400, 401, 404, 422, 429, 503),
)
def replace_repository_token(caller: App, repository_id: str, body: models.TokenRequest) -> models.WatchResponse:
    status = watching.replace_token(caller, repository_id, body.github_token, deps=wiring.deps())
    return models.WatchResponse.of(status, now=datetime.now(UTC))


@routes.endpoint(
    "POST",
    "/api/repositories/{repository_id}/resync",
    summary="Send every file again",
    tag="repositories",
    auth=Auth.APP,
    replies={202: models.Accepted},
    description="Deletes for paths the repository no longer has go out first.",
    errors=(401, 404, 429),
)
def resync_repository(caller: App, repository_id: str) -> models.Accepted:
    watching.resync(caller.id, repository_id, deps=wiring.deps())
    return models.Accepted.of("every file will be sent again, after deletes for what the repository no longer has")


@routes.endpoint(
    "GET",
    "/api/repositories/{repository_id}/deliveries",
    summary="Delivery attempts, newest first",
    tag="repositories",
    auth=Auth.APP,
    replies={200: models.DeliveryAttemptList},
    errors=(400, 401, 404, 429),
    query=("limit", "before"),
)
def list_repository_deliveries(caller: App, repository_id: str) -> models.DeliveryAttemptList:
    page = requests.page(routes.current_request)
    attempts = watching.delivery_attempts(
        caller, repository_id, limit=page.limit, before=page.before, deps=wiring.deps()
    )
    return models.DeliveryAttemptList.of(attempts, limit=page.limit)


@routes.endpoint(
    "GET",
    "/api/apps/me",
    summary="This app's profile",
    tag="apps",
    auth=Auth.APP,
    replies={200: models.AppResponse},
    errors=(401, 429),
)
def show_own_app(caller: App) -> models.AppResponse:
    return models.AppResponse.of(caller)


@routes.endpoint(
    "PATCH",
    "/api/apps/me",
    summary="Change base_url, contact fields or requests in flight",
    tag="apps",
    auth=Auth.APP,
    replies={200: models.AppResponse},
    request=models.AppProfileRequest,
    description="base_url is checked against the SSRF guard; max_in_flight may go up to the operator's ceiling.",
    errors=(400, 401, 429),
)
def update_own_app(caller: App, body: models.AppProfileRequest) -> models.AppResponse:
    changes = AppChanges(**body.model_dump())
    updated = app_accounts.update_profile(caller, changes, config=wiring.configs().accounts, deps=wiring.deps())
    return models.AppResponse.of(updated)


@routes.endpoint(
    "POST",
    "/api/apps/me/resume",
    summary="Resume deliveries its receiver paused",
    tag="apps",
    auth=Auth.APP,
    replies={200: models.AppResponse},
    description="After a 410 Gone, or no success for AUTO_PAUSE_AFTER_MS; every watch is delivered again. "
    "An operator's pause is the operator's to lift (409).",
    errors=(401, 409, 429),
)
def resume_own_app(caller: App) -> models.AppResponse:
    return models.AppResponse.of(app_accounts.resume_own(caller, deps=wiring.deps()))


@routes.endpoint(
    "DELETE",
    "/api/apps/me",
    summary="Delete this app and everything it owns",
    tag="apps",
    auth=Auth.APP,
    replies={204: None},
    errors=(401, 429),
)
def delete_own_app(caller: App) -> None:
    app_accounts.delete_app(caller.id, deps=wiring.deps())


@routes.endpoint(
    "POST",
    "/api/apps/me/rotate-token",
    summary="Replace the bearer token",
    tag="apps",
    auth=Auth.APP,
    replies={200: models.RotatedTokenResponse},
    description="The old token stops working at once.",
    errors=(401, 429),
)
def rotate_own_token(caller: App) -> models.RotatedTokenResponse:
    return models.RotatedTokenResponse(token=app_accounts.rotate_token(caller, deps=wiring.deps()))


@routes.endpoint(
    "POST",
    "/api/apps/me/rotate-key",
    summary="Replace the webhook signing key",
    tag="apps",
    auth=Auth.APP,
    replies={200: models.RotatedKeyResponse},
    description="During the overlap (KEY_ROTATION_OVERLAP_MS) webhooks carry X-Docora-Signature made "
    "with the new key and X-Docora-Signature-Previous made with the old one.",
    errors=(401, 429),
)
def rotate_own_key(caller: App) -> models.RotatedKeyResponse:
    config = wiring.configs().accounts
    key, until = app_accounts.rotate_key(caller, now=datetime.now(UTC), config=config, deps=wiring.deps())
    return models.RotatedKeyResponse(client_auth_key=key, previous_key_valid_until=until)
