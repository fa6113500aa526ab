"""Request and response bodies of the HTTP API: validation for requests, and the OpenAPI document's schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# The rest of git's ref-name rules are checked by domain.git_refs.
_GIT_BRANCH = r"^[^\x00-\x20~^:?*\[\\\x7f]{1,255}$"


class _Request(BaseModel):
    # Strict: "1" is not a number and 1 is not a string; unknown fields are refused, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


class OnboardRequest(_Request):
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
    github_url: Annotated[str, Field(max_length=300, examples=["https://github.com/vercel/next.js"])]
    github_token: Annotated[
        str | None,
        Field(max_length=255, description="ghp_, github_pat_ or ghs_ token for private repositories."),
    ] = None
    branch: Annotated[str | None, Field(pattern=_GIT_BRANCH, description="Defaults to the default branch.")] = None


class TokenRequest(_Request):
    github_token: Annotated[str, Field(max_length=255)]


class Error(BaseModel):
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
    app_id: Annotated[str, Field(examples=["app_0123456789abcdef01234567"])]
    token: Annotated[str, Field(description="Bearer token; shown only in this reply.")]
    client_auth_key: Annotated[str | None, Field(description="Present only when Docora generated it.")] = None
    created_at: str


class Circuit(BaseModel):
    status: Literal["closed", "open"]
    consecutive_failures: int
    open_until: str | None


class WatchResponse(BaseModel):
    repository_id: Annotated[str, Field(examples=["repo_0123456789abcdef01234567"])]
    github_url: str
    owner: str
    name: str
    branch: str
    is_private: bool
    status: Literal["pending", "syncing", "synced", "failed"]
    last_commit_sha: str | None
    last_synced_at: str | None
    last_checked_at: str | None
    files_total: int
    files_delivered: int
    files_pending: int
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    circuit: Circuit
    created_at: str


class WatchListResponse(BaseModel):
    repositories: list[WatchResponse]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    timestamp: str
    uptime: float
    checks: dict[str, Literal["ok", "unavailable"]]


class VersionResponse(BaseModel):
    version: str
    buildNumber: str
    gitSha: str
    buildDate: str


Error.model_rebuild()


class AppProfileRequest(_Request):
    base_url: Annotated[str | None, Field(max_length=2048)] = None
    app_name: Annotated[_Text | None, Field(max_length=100)] = None
    email: Annotated[str | None, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] = None
    website: Annotated[str | None, Field(max_length=2048, pattern=r"^https?://\S+$")] = None
    description: Annotated[str | None, Field(max_length=2000)] = None


class AppResponse(BaseModel):
    app_id: str
    app_name: str
    email: str
    website: str | None
    description: str | None
    base_url: str
    deliveries: Literal["active", "paused"]
    paused_reason: str | None
    created_at: str


class RotatedTokenResponse(BaseModel):
    token: Annotated[str, Field(description="The new bearer token; the old one no longer works.")]


class RotatedKeyResponse(BaseModel):
    client_auth_key: Annotated[str, Field(description="The new signing key, shown only in this reply.")]
    previous_key_valid_until: Annotated[
        str, Field(description="Until then webhooks also carry X-Docora-Signature-Previous, made with the old key.")
    ]


class Accepted(BaseModel):
    status: Literal["accepted"]
    message: str


class GitHubWebhookReceipt(BaseModel):
    outcome: Literal["pong", "scan_requested", "ignored"]
    detail: str
    repository_id: str | None = None


class DeliveryAttemptResponse(BaseModel):
    id: int
    path: str | None
    event: str
    delivery_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: str


class DeliveryAttemptList(BaseModel):
    deliveries: list[DeliveryAttemptResponse]
    next_before: Annotated[int | None, Field(description="Pass as `before` for the next page.")]


class AdminOnboardRequest(OnboardRequest):
    pass


class OverviewResponse(BaseModel):
    apps: int
    paused_apps: int
    repositories: int
    open_circuits: int
    watches: dict[str, int]
    attempts_last_hour: int
    failures_last_hour: int
    queues: dict[str, dict[str, int] | None]


class ListResponse(BaseModel):
    items: list[dict[str, object]]
    total: int
    limit: int
    offset: int


class AppDetailResponse(BaseModel):
    app: AppResponse
    repositories: list[WatchResponse]


class OperationResponse(BaseModel):
    operation_id: str
    kind: Literal["retry_failed", "resync"]
    app_id: str | None
    status: Literal["running", "done", "cancelled"]
    total: int
    done: int
    created_at: str
    updated_at: str
