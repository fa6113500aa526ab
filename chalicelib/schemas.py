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
