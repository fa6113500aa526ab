"""SQS message bodies, shared by the producer and the consumer of each queue. Ids only: contents go through S3."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from chalicelib import errors


@dataclass(frozen=True)
class ScanRequested:
    """Fetch and snapshot one repository, then fan out to its watches."""

    TYPE: ClassVar[str] = "scan_requested"
    VERSION: ClassVar[int] = 1

    repository_id: str
    # A scan that probed the head after this moment already covers the request.
    requested_at: datetime
    # Read every blob again and upload what the bucket lacks, even at an unchanged head.
    refresh: bool = False

    def to_json(self) -> str:
        fields = {"repository_id": self.repository_id, "requested_at": self.requested_at.isoformat()}
        if self.refresh:
            fields["refresh"] = True
        return json.dumps({"type": self.TYPE, "version": self.VERSION, **fields}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> ScanRequested:
        fields = _fields(body, cls.TYPE, cls.VERSION)
        refresh = fields.get("refresh", False)
        if not isinstance(refresh, bool):
            raise errors.InvalidInput.field("refresh", "must be true or false")
        return cls(_text(fields, "repository_id"), _moment(fields, "requested_at"), refresh)


@dataclass(frozen=True)
class DeliveryRequested:
    """Reconcile these apps' watches of one repository with its current snapshot (a scan's fan-out names many)."""

    TYPE: ClassVar[str] = "delivery_requested"
    VERSION: ClassVar[int] = 2
    MOST_APPS: ClassVar[int] = 50  # a message stays small, and one job's lanes few enough to share its time slice

    repository_id: str
    app_ids: tuple[str, ...]

    def to_json(self) -> str:
        fields = {"repository_id": self.repository_id, "app_ids": list(self.app_ids)}
        return json.dumps({"type": self.TYPE, "version": self.VERSION, **fields}, separators=(",", ":"))

    @classmethod
    def for_watches(cls, watches: Sequence[tuple[str, str]]) -> list[DeliveryRequested]:
        """One message per repository, naming its apps, MOST_APPS at most each."""
        apps: dict[str, list[str]] = {}
        for app_id, repository_id in watches:
            apps.setdefault(repository_id, []).append(app_id)
        return [
            cls(repository_id, tuple(app_ids[start : start + cls.MOST_APPS]))
            for repository_id, app_ids in apps.items()
            for start in range(0, len(app_ids), cls.MOST_APPS)
        ]

    @classmethod
    def from_json(cls, body: str) -> DeliveryRequested:
        # Version 1 named one app; a message sent before a deploy may still be in the queue after it.
        fields = _fields(body, cls.TYPE, (1, cls.VERSION))
        if fields["version"] == 1:
            return cls(_text(fields, "repository_id"), (_text(fields, "app_id"),))
        app_ids = fields.get("app_ids")
        if not isinstance(app_ids, list) or not app_ids or not all(isinstance(a, str) and a for a in app_ids):
            raise errors.InvalidInput.field("app_ids", "must be a non-empty list of app ids")
        return cls(_text(fields, "repository_id"), tuple(app_ids))


def _fields(body: str, expected_type: str, expected_versions: int | tuple[int, ...]) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except ValueError:
        raise errors.InvalidInput("message body is not JSON") from None
    if not isinstance(fields, dict) or fields.get("type") != expected_type:
        raise errors.InvalidInput(f"message is not a {expected_type} message")
    versions = expected_versions if isinstance(expected_versions, tuple) else (expected_versions,)
    if fields.get("version") not in versions:
        raise errors.InvalidInput(f"{expected_type} version {fields.get('version')!r} is not supported")
    return fields


def _moment(fields: dict[str, Any], name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(fields, name))
    except ValueError:
        raise errors.InvalidInput.field(name, "must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise errors.InvalidInput.field(name, "must carry a time zone")
    return moment


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise errors.InvalidInput.field(name, "must be a non-empty string")
    return value
