"""Powertools Logger, Metrics (CloudWatch EMF) and Tracer (X-Ray), shared by every function.

edge/functions.py attaches all three through Chalice middleware (ConvertToMiddleware), since Powertools' decorators
take (event, context) and Chalice handlers take one event. The service name differs from the Chalice app
name on purpose: the same name makes Chalice's own handler print every line twice.

Metrics go to stdout as EMF lines, which CloudWatch turns into metrics with no API call and no permission.
The Tracer is inactive outside Lambda (tests, chalice local) and sends to the X-Ray daemon inside it.
"""

from __future__ import annotations

import logging
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import config
from chalicelib.services.sweeping import SweepReport

SERVICE = "docora-service"
METRICS_NAMESPACE = "Docora"
LOG_LEVEL = config.log_level_from_env()

logger = Logger(service=SERVICE, level=LOG_LEVEL)
# Services log through the standard library under "chalicelib"; LOG_LEVEL applies to them too.
logging.getLogger("chalicelib").setLevel(LOG_LEVEL)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

# Most invocations record no metric of their own, and Powertools warns at every such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def count_sweep(report: SweepReport) -> None:
    """The watch loop's health: how far behind the oldest due check is, and what the sweep's checks found."""
    if report.skipped:
        return
    checks = report.checks
    metrics.add_metric(name="OldestOverdueCheck", unit=MetricUnit.Seconds, value=checks.oldest_overdue.total_seconds())
    metrics.add_metric(name="HeadChecksUnchanged", unit=MetricUnit.Count, value=checks.unchanged)
    metrics.add_metric(name="HeadChecksChanged", unit=MetricUnit.Count, value=checks.moved)
    metrics.add_metric(name="HeadChecksFailed", unit=MetricUnit.Count, value=checks.failed)
