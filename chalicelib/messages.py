"""SQS message bodies, shared by the producer and the consumer of each queue. Ids only: contents go through S3."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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
    """Reconcile one watch (app, repository) with the repository's current snapshot."""

    TYPE: ClassVar[str] = "delivery_requested"
    VERSION: ClassVar[int] = 1

    app_id: str
    repository_id: str

    def to_json(self) -> str:
        return json.dumps({"type": self.TYPE, "version": self.VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> DeliveryRequested:
        fields = _fields(body, cls.TYPE, cls.VERSION)
        return cls(app_id=_text(fields, "app_id"), repository_id=_text(fields, "repository_id"))


def _fields(body: str, expected_type: str, expected_version: int) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except ValueError:
        raise errors.InvalidInput("message body is not JSON") from None
    if not isinstance(fields, dict) or fields.get("type") != expected_type:
        raise errors.InvalidInput(f"message is not a {expected_type} message")
    if fields.get("version") != expected_version:
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
