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

from chalicelib import config

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
