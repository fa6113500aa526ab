"""The AWS resources Docora expects to exist, created on a local endpoint (moto now, LocalStack later).

In production the deploy creates them; locally nothing does, so the runner calls this before the API
starts. Every call is idempotent: a second `make run` against a persistent endpoint changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

# The redrive policy, not code, decides when a message stops being retried (STYLE.md E4).
MAX_RECEIVE_COUNT = 5
DLQ_SUFFIX = "-dlq"


def create_queue_with_dlq(sqs: Any, name: str) -> str:
    """Create `name` and `name-dlq`, with the redrive policy between them; return the queue's URL."""
    dlq_url = sqs.create_queue(QueueName=name + DLQ_SUFFIX)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Created without attributes and set afterwards: create_queue refuses an existing queue whose
    # attributes differ, and set_queue_attributes does not care.
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(policy)})
    return queue_url


def create_bucket(s3: Any, name: str, region: str) -> None:
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=name, **options)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
