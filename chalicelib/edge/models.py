"""Request and response bodies of the HTTP API: requests are validated by them, replies serialised by them, and
the OpenAPI document's schemas are theirs. Each reply model builds itself from what the services return (`of`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from chalicelib.domain.apps import App
from chalicelib.domain.deliveries import Attempt
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.repositories import WatchStatus
from chalicelib.services.github_events import Receipt
from chalicelib.services.health import Health
from chalicelib.services.onboarding import OnboardedApp

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# The rest of git's ref-name rules are checked by domain.git_refs.
_GIT_BRANCH = r"^[^\x00-\x20~^:?*\[\\\x7f]{1,255}$"


def iso_millis(moment: datetime) -> str:
    """The protocol's timestamps: ISO 8601 in UTC, with milliseconds and `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_millis, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Request(BaseModel):
    # Strict: "1" is not a number and 1 is not a string; unknown fields are refused, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Postgres text cannot hold U+0000: refused here, naming the field, rather than failing there.
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", "must not contain NUL characters")
        return value


class OnboardRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "base_url": "https://receiver.example.com/docora",
                    "app_name": "Docs mirror",
                    "email": "ops@example.com",
                }
            ]
        }
    )

    base_url: Annotated[str, Field(max_length=2048, examples=["https://receiver.example.com/docora"])]
    app_name: Annotated[_Text, Field(max_length=100, examples=["Docs mirror"])]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["ops@example.com"])]
    website: Annotated[str | None, Field(max_length=2048, pattern=r"^https?://\S+$")] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    client_auth_key: Annotated[
        str | None,
        Field(min_length=16, max_length=500, description="Key for webhook signatures; generated when omitted."),
    ] = None


class RegisterRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"github_url": "https://github.com/vercel/next.js", "branch": "canary"}]}
    )

    github_url: Annotated[str, Field(max_length=300, examples=["https://github.com/vercel/next.js"])]
    github_token: Annotated[
        str | None,
        Field(max_length=255, description="ghp_, github_pat_ or ghs_ token for private repositories."),
    ] = None
    branch: Annotated[str | None, Field(pattern=_GIT_BRANCH, description="Defaults to the default branch.")] = None


class TokenRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"github_token": "ghp_" + "0" * 36}]})

    github_token: Annotated[str, Field(max_length=255)]


class Error(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_request",
                    "message": "request body is invalid",
                    "details": [{"field": "base_url", "message": "is required"}],
                }
            ]
        }
    )

    error: Literal[
        "invalid_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
        "unprocessable",
        "rate_limited",
        "unavailable",
        "internal",
    ]
    message: str
    details: list[FieldErrorBody] | None = None


class FieldErrorBody(BaseModel):
    field: str
    message: str


class OnboardResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "app_0123456789abcdef01234567",
                    "token": "docora_" + "0" * 64,
                    "client_auth_key": "9f" * 32,
                    "created_at": "2026-11-27T12:00:00.000Z",
                }
            ]
        }
    )

    app_id: Annotated[str, Field(examples=["app_0123456789abcdef01234567"])]
    token: Annotated[str, Field(description="Bearer token; shown only in this reply.")]
    client_auth_key: Annotated[str | None, Field(description="Present only when Docora generated it.")] = None
    created_at: Timestamp

    @classmethod
    def of(cls, onboarded: OnboardedApp) -> OnboardResponse:
        fields: dict[str, Any] = {"app_id": onboarded.app.id, "token": onboarded.token}
        if onboarded.generated_client_auth_key is not None:  # given only then: fields not given are left out
            fields["client_auth_key"] = onboarded.generated_client_auth_key
        return cls(**fields, created_at=onboarded.app.created_at)


class Circuit(BaseModel):
    status: Literal["closed", "open"]
    consecutive_failures: int
    open_until: Timestamp | None


class WatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "repository_id": "repo_0123456789abcdef01234567",
                    "github_url": "https://github.com/vercel/next.js",
                    "owner": "vercel",
                    "name": "next.js",
                    "branch": "canary",
                    "is_private": False,
                    "status": "synced",
                    "last_commit_sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                    "last_synced_at": "2026-11-27T12:01:02.345Z",
                    "last_checked_at": "2026-11-27T12:05:00.000Z",
                    "files_total": 120,
                    "files_delivered": 120,
                    "files_pending": 0,
                    "attempts": 0,
                    "last_error": None,
                    "next_attempt_at": None,
                    "circuit": {"status": "closed", "consecutive_failures": 0, "open_until": None},
                    "deliveries": "active",
                    "paused_reason": None,
                    "created_at": "2026-11-27T12:00:00.000Z",
                }
            ]
        }
    )

    repository_id: Annotated[str, Field(examples=["repo_0123456789abcdef01234567"])]
    github_url: str
    owner: str
    name: str
    branch: str
    is_private: bool
    status: Literal["pending", "syncing", "synced", "failed"]
    last_commit_sha: str | None
    last_synced_at: Timestamp | None
    last_checked_at: Timestamp | None
    files_total: int
    files_delivered: int
    files_pending: int
    attempts: int
    last_error: str | None
    next_attempt_at: Timestamp | None
    circuit: Circuit
    deliveries: Literal["active", "paused"]
    paused_reason: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, status: WatchStatus, *, now: datetime) -> WatchResponse:
        repository, watch = status.repository, status.watch
        circuit_open = repository.circuit_open_until is not None and repository.circuit_open_until > now
        return cls(
            repository_id=repository.id,
            github_url=repository.github_url,
            owner=repository.owner,
            name=repository.name,
            branch=repository.branch,
            is_private=repository.is_private,
            status=watch.status,  # type: ignore[arg-type]  # the database's check constraint holds it to these
            last_commit_sha=watch.last_commit_sha,
            last_synced_at=watch.last_synced_at,
            last_checked_at=repository.last_checked_at,
            files_total=status.files_total,
            files_delivered=status.files_delivered,
            files_pending=status.files_pending,
            attempts=watch.attempts,
            last_error=watch.last_error or repository.last_error,
            next_attempt_at=watch.next_attempt_at,
            circuit=Circuit(
                status="open" if circuit_open else "closed",
                consecutive_failures=repository.consecutive_failures,
                open_until=repository.circuit_open_until if circuit_open else None,
            ),
            deliveries="paused" if status.deliveries_paused else "active",
            paused_reason=status.paused_reason,
            created_at=watch.created_at,
        )


class WatchListResponse(BaseModel):
    repositories: list[WatchResponse]

    @classmethod
    def of(cls, statuses: list[WatchStatus], *, now: datetime) -> WatchListResponse:
        return cls(repositories=[WatchResponse.of(status, now=now) for status in statuses])


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "timestamp": "2026-11-27T12:00:00.000Z",
                    "uptime": 42.5,
                    "checks": {"database": "ok", "redis": "ok", "queues": "ok"},
                }
            ]
        }
    )

    status: Literal["ok", "degraded"]
    timestamp: Timestamp
    uptime: float
    checks: dict[str, Literal["ok", "unavailable"]]

    @classmethod
    def of(cls, health: Health, *, uptime_seconds: float) -> HealthResponse:
        return cls(
            status="ok" if health.healthy else "degraded",
            timestamp=health.checked_at,
            uptime=round(uptime_seconds, 3),
            checks=health.checks,  # type: ignore[arg-type]  # health.check writes only these two values
        )


class VersionResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"version": "0.1.0", "buildNumber": "dev", "gitSha": "unknown", "buildDate": "unknown"}]
        }
    )

    version: str
    buildNumber: str
    gitSha: str
    buildDate: str


Error.model_rebuild()


class AppProfileRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"base_url": "https://receiver.example.com/v2/docora"}]})

    base_url: Annotated[str | None, Field(max_length=2048)] = None
    app_name: Annotated[_Text | None, Field(max_length=100)] = None
    email: Annotated[str | None, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] = None
    website: Annotated[str | None, Field(max_length=2048, pattern=r"^https?://\S+$")] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    max_in_flight: Annotated[
        int | None,
        Field(ge=1, description="Requests at once to the receiver: 1 is one at a time; at most MAX_IN_FLIGHT_CEILING."),
    ] = None


class MaxInFlightRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"max_in_flight": 4}]})

    max_in_flight: Annotated[int, Field(ge=1, description="At most MAX_IN_FLIGHT_CEILING.")]


class AppResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "app_0123456789abcdef01234567",
                    "app_name": "Docs mirror",
                    "email": "ops@example.com",
                    "website": None,
                    "description": None,
                    "base_url": "https://receiver.example.com/docora",
                    "deliveries": "active",
                    "delivery_state": "active",
                    "paused_reason": None,
                    "paused_by": None,
                    "max_in_flight": 8,
                    "failing_since": None,
                    "last_success_at": "2026-11-27T12:05:00.000Z",
                    "created_at": "2026-11-27T12:00:00.000Z",
                }
            ]
        }
    )

    app_id: str
    app_name: str
    email: str
    website: str | None
    description: str | None
    base_url: str
    deliveries: Annotated[Literal["active", "paused"], Field(description="The same as delivery_state.")]
    delivery_state: Literal["active", "paused"]
    paused_reason: str | None
    paused_by: Annotated[
        Literal["operator", "receiver"] | None,
        Field(description="receiver: its 410, or no success for AUTO_PAUSE_AFTER_MS; the app may resume itself."),
    ]
    max_in_flight: int
    failing_since: Annotated[Timestamp | None, Field(description="Its receivers have taken nothing since then.")]
    last_success_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, app: App) -> AppResponse:
        return cls(
            app_id=app.id,
            app_name=app.app_name,
            email=app.email,
            website=app.website,
            description=app.description,
            base_url=app.base_url,
            deliveries=app.delivery_state,  # type: ignore[arg-type]  # held to these by a check constraint
            delivery_state=app.delivery_state,  # type: ignore[arg-type]
            paused_reason=app.paused_reason,
            paused_by=app.paused_by,  # type: ignore[arg-type]  # likewise
            max_in_flight=app.max_in_flight,
            failing_since=app.failing_since,
            last_success_at=app.last_success_at,
            created_at=app.created_at,
        )


class RotatedTokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "docora_" + "1" * 64}]})

    token: Annotated[str, Field(description="The new bearer token; the old one no longer works.")]


class RotatedKeyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"client_auth_key": "ab" * 32, "previous_key_valid_until": "2026-11-28T12:00:00.000Z"}]
        }
    )

    client_auth_key: Annotated[str, Field(description="The new signing key, shown only in this reply.")]
    previous_key_valid_until: Annotated[
        Timestamp,
        Field(description="Until then webhooks also carry X-Docora-Signature-Previous, made with the old key."),
    ]


class Accepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "accepted", "message": "every file will be sent again"}]}
    )

    status: Literal["accepted"] = "accepted"
    message: str

    @classmethod
    def of(cls, message: str) -> Accepted:
        return cls(status="accepted", message=message)


class GitHubWebhookReceipt(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "scan_requested",
                    "detail": "a scan was requested",
                    "repository_id": "repo_0123456789abcdef01234567",
                }
            ]
        }
    )

    outcome: Literal["pong", "scan_requested", "ignored"]
    detail: str
    repository_id: str | None = None

    @classmethod
    def of(cls, receipt: Receipt) -> GitHubWebhookReceipt:
        return cls(
            outcome=receipt.outcome,  # type: ignore[arg-type]  # github_events.receive returns only these
            detail=receipt.detail,
            repository_id=receipt.repository_id,
        )


class DeliveryAttemptResponse(BaseModel):
    id: int
    path: str | None
    event: str
    delivery_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: Timestamp


class DeliveryAttemptList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deliveries": [
                        {
                            "id": 17,
                            "path": "README.md",
                            "event": "update",
                            "delivery_id": "dlv_" + "0" * 32,
                            "attempt": 1,
                            "status_code": 200,
                            "error": None,
                            "duration_ms": 12,
                            "attempted_at": "2026-11-27T12:01:02.345Z",
                        }
                    ],
                    "next_before": None,
                }
            ]
        }
    )

    deliveries: list[DeliveryAttemptResponse]
    next_before: Annotated[int | None, Field(description="Pass as `before` for the next page.")]

    @classmethod
    def of(cls, attempts: list[Attempt], *, limit: int) -> DeliveryAttemptList:
        items = [
            DeliveryAttemptResponse(
                id=attempt.id or 0,
                path=attempt.path,
                event=attempt.event,
                delivery_id=attempt.delivery_id,
                attempt=attempt.attempt,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
                attempted_at=attempt.attempted_at,
            )
            for attempt in attempts
        ]
        return cls(deliveries=items, next_before=attempts[-1].id if len(attempts) == limit else None)


class OverviewResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "apps": 3,
                    "paused_apps": 0,
                    "repositories": 5,
                    "open_circuits": 1,
                    "watches": {"pending": 1, "syncing": 0, "synced": 6, "failed": 1},
                    "attempts_last_hour": 240,
                    "failures_last_hour": 3,
                    "oldest_overdue_check_seconds": 0.0,
                    "queues": {
                        "scan": {"waiting": 0, "in_flight": 1, "delayed": 0},
                        "delivery": {"waiting": 2, "in_flight": 1, "delayed": 4},
                    },
                }
            ]
        }
    )

    apps: int
    paused_apps: int
    repositories: int
    open_circuits: int
    watches: dict[str, int]
    attempts_last_hour: int
    failures_last_hour: int
    oldest_overdue_check_seconds: Annotated[
        float, Field(description="How long the longest-waiting due head check has waited; 0 when none is overdue.")
    ]
    queues: dict[str, dict[str, int] | None]


class ListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"id": "app_0123456789abcdef01234567", "app_name": "Docs mirror"}],
                    "total": 1,
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: ListPage, query: ListQuery) -> ListResponse:
        items = [{key: _plain(value) for key, value in item.items()} for item in page.items]
        return cls(items=items, total=page.total, limit=query.limit, offset=query.offset)


class AppDetailResponse(BaseModel):
    app: AppResponse
    repositories: list[WatchResponse]

    @classmethod
    def of(cls, app: App, statuses: list[WatchStatus], *, now: datetime) -> AppDetailResponse:
        return cls(app=AppResponse.of(app), repositories=[WatchResponse.of(status, now=now) for status in statuses])


class OperationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "operation_id": "op_0123456789abcdef01234567",
                    "kind": "retry_failed",
                    "app_id": None,
                    "status": "running",
                    "total": 1200,
                    "done": 500,
                    "created_at": "2026-11-27T12:00:00.000Z",
                    "updated_at": "2026-11-27T12:01:00.000Z",
                }
            ]
        }
    )

    operation_id: str
    kind: Literal["retry_failed", "resync"]
    app_id: str | None
    status: Literal["running", "done", "cancelled"]
    total: int
    done: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, operation: Operation) -> OperationResponse:
        return cls(
            operation_id=operation.id,
            kind=operation.kind,  # type: ignore[arg-type]  # domain.operations.KINDS
            app_id=operation.app_id,
            status=operation.status,  # type: ignore[arg-type]  # held to these by a check constraint
            total=operation.total,
            done=operation.done,
            created_at=operation.created_at,
            updated_at=operation.updated_at,
        )


def _plain(value: Any) -> Any:
    return iso_millis(value) if isinstance(value, datetime) else value
