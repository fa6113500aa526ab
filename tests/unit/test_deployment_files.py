"""The files that deploy Docora to AWS agree with each other and with the app (docs/deploying.md).

.chalice/config.json names every variable per stage, .chalice/merge-template.json adds what Chalice cannot
express, and .chalice/policy-prod.json grants what the functions use; each names the queues and the bucket.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from docora_local import deploy
from docora_local.harness.settings import TEST_ENCRYPTION_KEY
from docora_local.variables import settings_variables

CHALICE = Path(__file__).resolve().parents[2] / ".chalice"
SECRETS = ("DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEY", "ADMIN_API_KEY", "GITHUB_WEBHOOK_SECRET")
SECRET_REFERENCE = re.compile(r"^\{\{resolve:secretsmanager:docora/prod:SecretString:([A-Z_]+)\}\}$")


def load(name: str) -> dict[str, Any]:
    return json.loads((CHALICE / name).read_text())


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return load("config.json")["stages"]["prod"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load("merge-template.json")


def every_variable_settings_reads() -> list[str]:
    minimal = {"DATABASE_URL": "postgresql://h/d", "REDIS_URL": "redis://h", "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY}
    return settings_variables({**minimal, "ADMIN_API_KEY": "k" * 32})


def test_the_prod_stage_sets_every_variable_the_settings_read(prod):
    assert sorted(prod["environment_variables"]) == sorted(every_variable_settings_reads())


def test_prod_secrets_come_from_secrets_manager_and_nothing_else_does(prod):
    variables = prod["environment_variables"]
    referenced = {name: SECRET_REFERENCE.match(value) for name, value in variables.items()}

    assert {name for name, match in referenced.items() if match} == set(SECRETS)
    assert all(match.group(1) == name for name, match in referenced.items() if match)


def test_the_template_names_the_queues_and_bucket_that_config_and_policy_name(prod, template):
    variables, defaults = prod["environment_variables"], template["Parameters"]
    policy = json.dumps(load("policy-prod.json"))

    for parameter, variable in deploy.RESOURCE_NAMES.items():
        assert defaults[parameter]["Default"] == variables[variable]
        assert f':{variables[variable]}"' in policy or f":::{variables[variable]}" in policy


def test_the_policy_lets_the_functions_read_write_and_delete_every_key_the_contents_use(prod):
    from chalicelib.adapters.s3_contents import KEY_PREFIXES

    bucket = prod["environment_variables"]["CONTENT_BUCKET"]
    (objects,) = [s for s in load("policy-prod.json")["Statement"] if s.get("Sid") == "ReadAndWriteContents"]

    assert sorted(objects["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert sorted(objects["Resource"]) == sorted(f"arn:aws:s3:::{bucket}/{prefix}*" for prefix in KEY_PREFIXES)


def test_each_queue_stays_hidden_at_least_as_long_as_its_consumer_may_run(prod, template):
    functions = prod["lambda_functions"]
    consumers = {"ScanVisibilityTimeout": "scan_repositories", "DeliveryVisibilityTimeout": "deliver_changes"}

    for parameter, function in consumers.items():
        assert template["Parameters"][parameter]["Default"] >= functions[function]["lambda_timeout"]


def test_the_local_deployment_sizes_the_visibility_of_every_consumers_queue():
    import app

    consumers = [source.name for source in app.app.event_sources if hasattr(source, "queue")]

    logical_ids = {"".join(part.title() for part in name.split("_")) for name in consumers}
    assert set(deploy.VISIBILITY_TIMEOUTS.values()) == logical_ids


def test_every_queue_has_a_dead_letter_queue_and_the_bucket_expires_contents(template):
    resources = template["Resources"]
    queues = {name: resource for name, resource in resources.items() if resource.get("Type") == "AWS::SQS::Queue"}
    sources = [name for name, queue in queues.items() if "RedrivePolicy" in queue["Properties"]]

    for name in sources:
        target = queues[name]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert target in queues and "RedrivePolicy" not in queues[target]["Properties"]
    assert len(sources) * 2 == len(queues)
    rules = resources["ContentBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0]["Status"] == "Enabled" and rules[0]["ExpirationInDays"] == {"Ref": "ContentRetentionDays"}
