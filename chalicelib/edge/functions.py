"""Every Lambda function: the API (the declared routes), the two queue consumers and the minute's sweep.

app.py re-exports what is here, because Chalice looks for `app` in app.py and Lambda finds each consumer as
`app.<handler>`. Each handler parses its event, calls one service and returns.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice import Chalice, ConvertToMiddleware, Rate

from chalicelib import config, messages, wiring
from chalicelib.edge import (
    client_routes,
    dashboard_routes,
    endpoints,
    observability,
    operator_routes,
    replies,
    service_routes,
)
from chalicelib.edge.observability import logger, metrics, tracer
from chalicelib.services import delivering, scanning, sweeping

app = Chalice(app_name="docora")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics(capture_cold_start_metric=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))
for routes in (service_routes.routes, client_routes.routes, operator_routes.routes):
    app.register_blueprint(routes.blueprint)
app.register_blueprint(dashboard_routes.dashboard.blueprint)
_method_refusals = endpoints.Routes(__name__)
endpoints.refuse_other_methods(_method_refusals)
app.register_blueprint(_method_refusals.blueprint)

# Read when Chalice packages the app, to declare the SQS triggers; the functions read them again at run time.
_SCAN_QUEUE = config.queue_name_from_env("SCAN_QUEUE_NAME", config.Settings.scan_queue_name)
_DELIVERY_QUEUE = config.queue_name_from_env("DELIVERY_QUEUE_NAME", config.Settings.delivery_queue_name)
_SCAN_CONCURRENCY = config.scan_concurrency_from_env()
scan_batch = BatchProcessor(event_type=EventType.SQS)
delivery_batch = BatchProcessor(event_type=EventType.SQS)


@app.middleware("http")
def protocol_errors(event, get_response):
    response = replies.uniform_errors(get_response(event))
    origin = wiring.configs().api.cors_origin if response.status_code != 500 else None
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


# Partial batch failure needs ReportBatchItemFailures on the event source mapping, which Chalice
# cannot set (aws/chalice#2029): .chalice/merge-template.json adds it. maximum_concurrency caps the
# Postgres connections the consumer opens.
@app.on_sqs_message(queue=_SCAN_QUEUE, batch_size=5, maximum_concurrency=_SCAN_CONCURRENCY)
def scan_repositories(event):
    return process_partial_response(
        event=event.to_dict(), record_handler=_scan_one, processor=scan_batch, context=event.context
    )


def _scan_one(record: SQSRecord) -> None:
    request = messages.ScanRequested.from_json(record.body)
    scanning.scan_repository(
        request.repository_id,
        request.requested_at,
        now=datetime.now(UTC),
        config=wiring.configs().scanning,
        deps=wiring.deps(),
        refresh=request.refresh,
    )


# One repository per message (with up to 50 of its apps), each app in a lane of its own, so a slow receiver holds up
# only its own watches; ReportBatchItemFailures as above.
@app.on_sqs_message(queue=_DELIVERY_QUEUE, batch_size=1, maximum_concurrency=20)
def deliver_changes(event):
    return process_partial_response(
        event=event.to_dict(), record_handler=_deliver_one, processor=delivery_batch, context=event.context
    )


def _deliver_one(record: SQSRecord, lambda_context) -> None:  # Powertools passes the context by this name
    request, deps = messages.DeliveryRequested.from_json(record.body), wiring.deps()
    with deps.delivery_queue.working_on(record.receipt_handle):
        delivering.deliver(
            request.repository_id,
            list(request.app_ids),
            clock=lambda: datetime.now(UTC),
            sleep=time.sleep,
            time_left_ms=lambda_context.get_remaining_time_in_millis,
            random=random.random,
            config=wiring.configs().delivering,
            deps=deps,
        )


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event):
    report = sweeping.sweep(
        clock=lambda: datetime.now(UTC),
        time_left_ms=event.context.get_remaining_time_in_millis,
        random=random.random,
        config=wiring.configs().sweeping,
        deps=wiring.deps(),
    )
    observability.count_sweep(report)
