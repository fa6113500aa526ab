"""SQS queues: messages out, by queue name, with the queue URL looked up once per container."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors
from chalicelib.messages import DeliveryRequested, ScanRequested

_BATCH = 10  # SQS takes at most ten messages per SendMessageBatch
# A message being worked on reappears this long after its job stops extending it (say, killed); the queue's own
# visibility timeout must be at least the function's timeout (Lambda checks), which is far longer.
_VISIBLE_AFTER_SECONDS = 30

logger = logging.getLogger(__name__)


class SqsQueue:
    def __init__(self, client: Any, queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name
        self._queue_url: str | None = None

    def send(self, body: str, delay_seconds: int = 0) -> None:
        with _translated(self._queue_name):
            self._client.send_message(QueueUrl=self._url(), MessageBody=body, DelaySeconds=delay_seconds)

    def send_many(self, bodies: Sequence[str]) -> None:
        """Ten messages per SendMessageBatch call, SQS's most; messages SQS failed to take are sent once more."""
        with _translated(self._queue_name):
            for start in range(0, len(bodies), _BATCH):
                entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + _BATCH])]
                failed = self._client.send_message_batch(QueueUrl=self._url(), Entries=entries).get("Failed", [])
                if failed:
                    retried = [entry for entry in entries if entry["Id"] in {item["Id"] for item in failed}]
                    if self._client.send_message_batch(QueueUrl=self._url(), Entries=retried).get("Failed"):
                        raise errors.Unavailable(f"queue {self._queue_name} did not take every message")

    def depth(self) -> dict[str, int]:
        names = {
            "ApproximateNumberOfMessages": "waiting",
            "ApproximateNumberOfMessagesNotVisible": "in_flight",
            "ApproximateNumberOfMessagesDelayed": "delayed",
        }
        with _translated(self._queue_name):
            found = self._client.get_queue_attributes(QueueUrl=self._url(), AttributeNames=list(names))
        return {label: int(found["Attributes"].get(name, 0)) for name, label in names.items()}

    def ping(self) -> None:
        with _translated(self._queue_name):
            self._client.get_queue_attributes(QueueUrl=self._url(), AttributeNames=["QueueArn"])

    def _url(self) -> str:
        if self._queue_url is None:
            self._queue_url = self._client.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._queue_url


class SqsScanQueue(SqsQueue):
    def request_scan(self, repository_id: str, requested_at: datetime, *, refresh: bool = False) -> None:
        self.send(ScanRequested(repository_id, requested_at, refresh).to_json())

    def request_scans(self, repository_ids: Sequence[str], requested_at: datetime) -> None:
        self.send_many([ScanRequested(repository_id, requested_at).to_json() for repository_id in repository_ids])


class SqsDeliveryQueue(SqsQueue):
    @contextmanager
    def working_on(self, receipt_handle: str) -> Iterator[None]:
        """Keep the message hidden only _VISIBLE_AFTER_SECONDS at a time, extended while the block runs: a job killed
        mid-transfer has its message back within that, not after the queue's long visibility timeout."""
        stop = threading.Event()
        extender = threading.Thread(target=self._keep_hidden, args=(receipt_handle, stop), daemon=True)
        self._hide(receipt_handle)
        extender.start()
        try:
            yield
        finally:
            stop.set()
            extender.join()

    def _keep_hidden(self, receipt_handle: str, stop: threading.Event) -> None:
        while not stop.wait(_VISIBLE_AFTER_SECONDS / 3):
            self._hide(receipt_handle)

    def _hide(self, receipt_handle: str) -> None:
        try:
            self._client.change_message_visibility(
                QueueUrl=self._url(), ReceiptHandle=receipt_handle, VisibilityTimeout=_VISIBLE_AFTER_SECONDS
            )
        except (BotoCoreError, ClientError):
            # Not fatal: the message then keeps the queue's own, longer, visibility timeout.
            logger.warning("could not extend a delivery message's visibility", extra={"queue": self._queue_name})

    def request_delivery(self, app_id: str, repository_id: str, delay_seconds: int = 0) -> None:
        self.send(DeliveryRequested(repository_id, (app_id,)).to_json(), delay_seconds)

    def request_deliveries(self, watches: Sequence[tuple[str, str]]) -> None:
        self.send_many([request.to_json() for request in DeliveryRequested.for_watches(watches)])


@contextmanager
def _translated(queue_name: str) -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise errors.Unavailable(f"queue {queue_name} is not available") from error
