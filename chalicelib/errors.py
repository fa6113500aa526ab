"""Failures the service raises on purpose; adapters translate library errors into these, http.py into HTTP.

ServiceError
├── InvalidInput    the caller sent something unusable (400); `details` names the fields
├── Unauthorized    no credentials, or credentials that do not match (401)
├── Forbidden       valid credentials that do not allow this (403)
├── NotFound        the named thing does not exist, or is not the caller's (404)
├── Conflict        the request clashes with current state (409)
├── Unprocessable   well-formed, but a third party refused it, such as GitHub rejecting a token (422)
├── RateLimited     too many requests; `retry_after` seconds (429)
├── Unavailable     a dependency failed in a way a later retry may fix (503); `retry_after` when known
└── GitFailure      a repository could not be read; scans count it toward its circuit breaker (503 if shown)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ServiceError(Exception):
    """Base for every deliberate failure. The message is safe to show to the caller."""


class InvalidInput(ServiceError):
    """The caller sent something the service cannot act on."""

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.details = details or []

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Unauthorized(ServiceError):
    """No credentials were given, or they match no one."""


class Forbidden(ServiceError):
    """The credentials are valid but do not allow this."""


class NotFound(ServiceError):
    """The named thing does not exist, or does not belong to the caller."""


class Conflict(ServiceError):
    """The request clashes with current state, such as a duplicate."""


class Unprocessable(ServiceError):
    """The request is well-formed but a third party refused it."""


class RateLimited(ServiceError):
    """Too many requests from this caller; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """A dependency failed in a way that a later retry may fix."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitFailure(ServiceError):
    """A repository could not be read: its git server refused or failed, or its branch is gone.

    A scan records it against the repository's circuit breaker instead of letting the queue retry it.
    """
