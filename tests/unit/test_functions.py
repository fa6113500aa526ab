"""The Lambda functions as Lambda invokes them: the sweep's head checks and what it reports as metrics."""

from __future__ import annotations

import json

from chalice.local import LambdaContext
from chalice.test import Client

from tests.unit.test_head_checks import add


def emf_metrics(output: str) -> dict[str, float]:
    """The metrics in the CloudWatch EMF lines a function printed."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]  # Powertools writes each value as a list of samples
                    found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_the_sweep_checks_heads_and_reports_what_it_found_and_how_far_behind_it_is(deps, capsys):
    import app

    quiet, moved = add(deps, "quiet"), add(deps, "moved")
    deps.heads.table["https://git.example/acme/moved.git"] = {"main": "c2"}
    # The deployed function checks GIT_BASE_URL, which is GitHub's by default.
    deps.heads.table = {url.replace("https://git.example", "https://github.com"): heads
                        for url, heads in deps.heads.table.items()}  # fmt: skip

    with Client(app.app) as client:
        event = client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    # As Lambda runs it, with the prod stage's minute (Chalice's test client would give it 3 s, too little to check).
    app.app.handler_map["sweep"](event, LambdaContext("sweep", memory_size=256, max_runtime_ms=60_000))

    metrics = emf_metrics(capsys.readouterr().out)
    assert deps.scan_queue.requested == [moved]
    assert quiet not in deps.scan_queue.requested
    assert (metrics["HeadChecksUnchanged"], metrics["HeadChecksChanged"], metrics["HeadChecksFailed"]) == (1, 1, 0)
    assert metrics["OldestOverdueCheck"] == 0
