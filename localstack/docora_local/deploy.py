"""Deploying Docora to LocalStack as it goes to AWS: `chalice package` with the merge template, then CloudFormation.

The stack holds everything: the functions, the API, the queues with their dead-letter queues, the bucket
with its lifecycle rule, the schedule and ReportBatchItemFailures (.chalice/merge-template.json). Where AWS's
route would use `aws cloudformation package` and config.json, this module does the local equivalent:

- it uploads the code to a deployment bucket and points each function's CodeUri at it;
- it gives every function the caller's Docora variables (those Settings reads, and POWERTOOLS_*);
- it sets each queue's visibility timeout to the timeout of the function consuming it (STYLE.md E4).

Deploy once per LocalStack start, as `make run` and the end-to-end tests do: re-putting a scheduled rule
makes LocalStack fire it twice as often (LOCALSTACK.md §1.8), so `deploy` refuses a stack that exists.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docora_local import REPO
from docora_local.variables import function_environment

MERGE_TEMPLATE = REPO / ".chalice" / "merge-template.json"
STACK_NAME = "docora-local"
ARTIFACTS_BUCKET = "docora-deployments"
# Template parameter -> the function that consumes that queue.
VISIBILITY_TIMEOUTS = {"ScanVisibilityTimeout": "ScanRepositories", "DeliveryVisibilityTimeout": "DeliverChanges"}
# Template parameter -> the variable that names the resource in the functions' environment.
RESOURCE_NAMES = {
    "ScanQueueName": "SCAN_QUEUE_NAME",
    "DeliveryQueueName": "DELIVERY_QUEUE_NAME",
    "ContentBucketName": "CONTENT_BUCKET",
}
_FUNCTION = "AWS::Serverless::Function"
_WAIT_SECONDS = 120
_POLL_SECONDS = 0.5


class DeployError(Exception):
    """Packaging or the stack failed; the message carries CloudFormation's or Chalice's reasons."""


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    stack_name: str
    rest_api_id: str
    functions: dict[str, str]  # logical id -> function name

    @property
    def api_url(self) -> str:
        """The API's stage on loopback; `*.execute-api.localhost.localstack.cloud` may not resolve here."""
        return f"{self.endpoint}/_aws/execute-api/{self.rest_api_id}/api"


def package(out_dir: Path, *, stage: str, env: Mapping[str, str]) -> Path:
    """`chalice package` for `stage` into `out_dir`. app.py reads the queue names from `env` as it is imported."""
    argv = package_command(out_dir, stage=stage)
    result = subprocess.run(argv, cwd=REPO, env=dict(env), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise DeployError(f"chalice package failed: {(result.stderr or result.stdout).strip()}")
    return out_dir


def package_command(out_dir: Path, *, stage: str) -> list[str]:
    """Run from the repository's root, with the functions' environment."""
    chalice = Path(sys.executable).parent / "chalice"
    return [str(chalice), "package", "--stage", stage, "--merge-template", str(MERGE_TEMPLATE), str(out_dir)]


def deploy(
    package_dir: Path,
    *,
    session: Any,
    endpoint: str,
    env: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
) -> Deployment:
    """Create the stack from a `chalice package` folder; `parameters` override the template's and ours."""
    s3 = session.client("s3", endpoint_url=endpoint)
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    if _stack_exists(cloudformation, STACK_NAME):
        raise DeployError(f"stack {STACK_NAME} exists already; deploy once per LocalStack start (LOCALSTACK.md §1.8)")
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    template = json.loads((package_dir / "sam.json").read_text())
    code_uri = f"s3://{ARTIFACTS_BUCKET}/{_upload(s3, (package_dir / 'deployment.zip').read_bytes(), '.zip')}"
    localized = localize(template, code_uri=code_uri, environment=function_environment(env))
    template_key = _upload(s3, json.dumps(localized, separators=(",", ":")).encode(), ".json")
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateURL=f"{endpoint}/{ARTIFACTS_BUCKET}/{template_key}",
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in {**stack_parameters(template, env), **(parameters or {})}.items()
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    _wait_for(cloudformation, STACK_NAME)
    return _describe(cloudformation, endpoint)


def localize(template: dict[str, Any], *, code_uri: str, environment: Mapping[str, str]) -> dict[str, Any]:
    """The packaged template with its code in the deployment bucket and `environment` in every function."""
    localized = copy.deepcopy(template)
    for resource in localized["Resources"].values():
        if resource["Type"] == _FUNCTION:
            properties = resource["Properties"]
            properties["CodeUri"] = code_uri
            properties.setdefault("Environment", {}).setdefault("Variables", {}).update(environment)
    return localized


def stack_parameters(template: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Visibility timeouts equal to the consuming functions' timeouts; resource names from the environment."""
    resources = template["Resources"]
    parameters = {
        key: str(resources[function]["Properties"]["Timeout"]) for key, function in VISIBILITY_TIMEOUTS.items()
    }
    parameters.update({key: env[name] for key, name in RESOURCE_NAMES.items() if env.get(name, "").strip()})
    return parameters


def _upload(s3: Any, content: bytes, suffix: str) -> str:
    key = hashlib.sha256(content).hexdigest() + suffix
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=content)
    return key


def _stack_exists(cloudformation: Any, name: str) -> bool:
    stacks = cloudformation.list_stacks()["StackSummaries"]
    return any(stack["StackName"] == name and stack["StackStatus"] != "DELETE_COMPLETE" for stack in stacks)


def _wait_for(cloudformation: Any, name: str) -> None:
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if status == "CREATE_COMPLETE":
            return
        if not status.endswith("_IN_PROGRESS"):
            raise DeployError(f"stack {name} is {status}: {_failures(cloudformation, name)}")
        time.sleep(_POLL_SECONDS)
    raise DeployError(f"stack {name} was not created within {_WAIT_SECONDS} s")


def _failures(cloudformation: Any, name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    reasons = [
        f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', event['ResourceStatus'])}"
        for event in events
        if event["ResourceStatus"].endswith("_FAILED")
    ]
    return "; ".join(reasons) or "no resource reported a failure"


def _describe(cloudformation: Any, endpoint: str) -> Deployment:
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    resources = cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
    functions = {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in resources
        if resource["ResourceType"] == "AWS::Lambda::Function"
    }
    return Deployment(endpoint, STACK_NAME, outputs["RestAPIId"], functions)
