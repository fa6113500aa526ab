"""Lambda events for tests: SQS batches whose records have distinct message ids (Chalice's factory gives
every record the same one, which makes partial-batch results ambiguous)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any


def sqs_event(*bodies: str, queue: str = "docora-scan") -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue}",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }
