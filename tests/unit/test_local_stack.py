"""The local runner's decisions, without starting anything: what the functions get, how the stack is localized."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import ConfigurationError
from docora_local import deploy, plan
from docora_local.harness.settings import TEST_ADMIN_API_KEY, TEST_ENCRYPTION_KEY
from docora_local.lambda_logs import LambdaLogTail
from docora_local.variables import function_environment

REQUIRED = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/docora",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    "ADMIN_API_KEY": TEST_ADMIN_API_KEY,
}
PACKAGED = {
    "Resources": {
        "ScanRepositories": {"Type": "AWS::Serverless::Function", "Properties": {"Timeout": 10, "CodeUri": "./z"}},
        "DeliverChanges": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Timeout": 90, "CodeUri": "./z", "Environment": {"Variables": {"LOG_LEVEL": "info"}}},
        },
        "ScanQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "docora-scan"}},
    }
}


def test_the_functions_get_every_docora_variable_that_is_set_and_nothing_else():
    environ = {
        **REQUIRED,
        "RESCAN_INTERVAL_MS": "60000",
        "GITHUB_API_URL": "http://127.0.0.1:8081",
        "POWERTOOLS_LOG_DEDUPLICATION_DISABLED": "1",
        "CORS_ORIGIN": "",
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "test",
    }

    chosen = function_environment(environ)

    assert chosen == {
        **REQUIRED,
        "RESCAN_INTERVAL_MS": "60000",
        "GITHUB_API_URL": "http://127.0.0.1:8081",
        "POWERTOOLS_LOG_DEDUPLICATION_DISABLED": "1",
    }


def test_an_invalid_variable_stops_the_deployment_naming_it():
    with pytest.raises(ConfigurationError, match="RESCAN_INTERVAL_MS"):
        function_environment({**REQUIRED, "RESCAN_INTERVAL_MS": "soon"})


def test_localizing_points_every_function_at_the_uploaded_code_and_gives_it_the_environment():
    localized = deploy.localize(PACKAGED, code_uri="s3://bucket/code.zip", environment={"REDIS_URL": "redis://h"})

    functions = [localized["Resources"][name]["Properties"] for name in ("ScanRepositories", "DeliverChanges")]
    assert [function["CodeUri"] for function in functions] == ["s3://bucket/code.zip"] * 2
    assert functions[0]["Environment"]["Variables"] == {"REDIS_URL": "redis://h"}
    assert functions[1]["Environment"]["Variables"] == {"LOG_LEVEL": "info", "REDIS_URL": "redis://h"}
    assert localized["Resources"]["ScanQueue"] == PACKAGED["Resources"]["ScanQueue"]
    assert PACKAGED["Resources"]["ScanRepositories"]["Properties"]["CodeUri"] == "./z"  # the original is untouched


def test_each_queue_is_hidden_exactly_as_long_as_its_consumer_may_run_and_named_as_configured():
    parameters = deploy.stack_parameters(PACKAGED, {"CONTENT_BUCKET": "my-contents", "SCAN_QUEUE_NAME": " "})

    assert parameters == {
        "ScanVisibilityTimeout": "10",
        "DeliveryVisibilityTimeout": "90",
        "ContentBucketName": "my-contents",
    }


def test_the_api_is_reached_on_loopback_through_localstacks_execute_api_path():
    deployment = deploy.Deployment("http://127.0.0.1:4566", "docora-local", "abc123", {})

    assert deployment.api_url == "http://127.0.0.1:4566/_aws/execute-api/abc123/api"


def test_github_local_points_the_functions_at_the_stand_ins(tmp_path: Path):
    stack = plan.Plan("postgresql://h/d", "redis://h", "http://127.0.0.1:4566", False, False, True, tmp_path)

    env = plan.child_environment({**REQUIRED, "GITHUB_API_URL": "https://api.github.com"}, stack, tmp_path)

    assert env["GITHUB_API_URL"] == f"http://127.0.0.1:{plan.GITHUB_API_PORT}"
    assert env["GIT_BASE_URL"] == f"http://127.0.0.1:{plan.GIT_HTTP_PORT}"
    assert env["ALLOW_PRIVATE_WEBHOOK_TARGETS"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] == "test"  # never the shell's real credentials with our own LocalStack


def test_generated_keys_are_kept_for_the_next_run(tmp_path: Path):
    stack = plan.Plan("postgresql://h/d", "redis://h", "http://127.0.0.1:4566", False, False, True, None)

    first = plan.child_environment({}, stack, tmp_path)
    second = plan.child_environment({}, stack, tmp_path)

    assert first["ENCRYPTION_KEY"] == second["ENCRYPTION_KEY"]
    assert len(first["ADMIN_API_KEY"]) == 64
    assert (tmp_path / "admin_api_key").stat().st_mode & 0o777 == 0o600


def test_github_must_be_local_or_unset(tmp_path: Path):
    with pytest.raises(plan.StartupError, match="GITHUB must be"):
        plan.github_repos({"GITHUB": "remote"}, tmp_path)


def test_the_log_tail_names_each_line_by_its_function_and_waits_for_whole_lines(tmp_path: Path):
    tail = LambdaLogTail(tmp_path, {"ScanRepositories": "docora-local-ScanRepositories-1a2b"})
    log = tmp_path / "docora-local-ScanRepositories-1a2b-0f0f.log"
    log.write_text("START RequestId: 1\nhalf a li")

    first = tail.new_lines()
    with log.open("a") as more:
        more.write("ne\n")
    second = tail.new_lines()

    assert first == ["ScanRepositories | START RequestId: 1"]
    assert second == ["ScanRepositories | half a line"]
    assert tail.new_lines() == []
