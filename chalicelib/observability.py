"""Powertools Logger, shared by every function. The service name differs from the Chalice app name on
purpose: the same name makes Chalice's own handler print every line twice."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="docora-service")
