"""Onboarding, authentication, errors and the public routes, through chalice.test.Client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib import wiring
from tests.unit.conftest import admin_headers, bearer, fake_configs

MERGE_TEMPLATE = Path(__file__).resolve().parents[2] / ".chalice" / "merge-template.json"
ONBOARDING = {"base_url": "https://receiver.example.com/hooks", "app_name": "Mirror", "email": "ops@example.com"}


def onboard(client, body=None, headers=None):
    return client.http.post(
        "/api/apps/onboard", headers=headers or admin_headers(), body=json.dumps(body or ONBOARDING)
    )


def test_onboarding_returns_the_token_and_a_generated_key_once(client, deps):
    response = onboard(client)

    assert response.status_code == 201
    assert set(response.json_body) == {"app_id", "token", "client_auth_key", "created_at"}
    assert response.json_body["token"].startswith("docora_")
    stored = deps.store.tables.apps[response.json_body["app_id"]][0]
    assert response.json_body["token"] not in stored.token_hash
    assert response.json_body["client_auth_key"] not in stored.client_auth_key_encrypted


def test_onboarding_with_a_key_of_its_own_does_not_echo_it(client, deps):
    response = onboard(client, ONBOARDING | {"client_auth_key": "k" * 20})

    assert response.status_code == 201
    assert "client_auth_key" not in response.json_body
    stored = deps.store.tables.apps[response.json_body["app_id"]][0]
    assert deps.cipher.decrypt(stored.client_auth_key_encrypted) == "k" * 20


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + "x" * 40}],
    ids=["missing", "wrong", "other scheme"],
)
def test_onboarding_needs_the_operator_key(client, deps, headers):
    response = onboard(client, headers=headers | {"Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.json_body["error"] == "unauthorized"
    assert deps.store.tables.apps == {}


def test_open_onboarding_needs_no_key(client, monkeypatch):
    opened = fake_configs(onboarding_mode="open")
    monkeypatch.setattr(wiring, "configs", lambda: opened)

    response = onboard(client, headers={"Content-Type": "application/json"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("https://receiver.example.com/hooks", True),
        ("http://receiver.example.com/hooks", False),
        ("https://127.0.0.1/hooks", False),
        ("https://10.0.0.8/hooks", False),
        ("https://169.254.169.254/latest", False),
        ("https://[::1]/hooks", False),
        ("https://unresolvable.example.org/", False),
    ],
)
def test_onboarding_refuses_private_webhook_targets(client, deps, base_url, allowed):
    response = onboard(client, ONBOARDING | {"base_url": base_url})

    assert (response.status_code == 201) is allowed
    if not allowed:
        assert response.json_body["details"][0]["field"] == "base_url"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"app_name": "Mirror", "email": "ops@example.com"}, "base_url"),
        (ONBOARDING | {"app_name": 7}, "app_name"),
        (ONBOARDING | {"email": "not-an-email"}, "email"),
        (ONBOARDING | {"admin": True}, "admin"),
        (ONBOARDING | {"client_auth_key": "short"}, "client_auth_key"),
        (ONBOARDING | {"app_name": "   "}, "app_name"),
    ],
    ids=["missing", "wrong type", "bad email", "unknown field", "short key", "blank name"],
)
def test_bad_onboarding_bodies_name_the_field_and_store_nothing(client, deps, body, field):
    response = onboard(client, body)

    assert response.status_code == 400
    assert response.json_body["error"] == "invalid_request"
    assert field in [detail["field"] for detail in response.json_body["details"]]
    assert deps.store.tables.apps == {}


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000, b'{"a":"' + b"x" * 70_000 + b'"}', b"[]"],
    ids=["malformed", "not utf-8", "deeply nested", "oversized", "not an object"],
)
def test_unparseable_bodies_are_refused_plainly(client, deps, raw):
    response = client.http.post("/api/apps/onboard", headers=admin_headers(), body=raw)

    assert response.status_code == 400
    assert response.json_body["error"] == "invalid_request"
    assert deps.store.tables.apps == {}


def test_public_routes_are_rate_limited_per_client_ip(client, monkeypatch):
    limited = fake_configs(public_rate_limit_per_minute=2)
    monkeypatch.setattr(wiring, "configs", lambda: limited)

    statuses = [onboard(client).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]
    assert onboard(client).headers["Retry-After"] == "60"


def test_a_redis_outage_does_not_block_requests(client, deps):
    deps.rate_limiter.available = False

    assert onboard(client).status_code == 201


def test_a_valid_token_authenticates_and_a_wrong_one_does_not(client):
    token = onboard(client).json_body["token"]

    assert client.http.get("/api/repositories", headers=bearer(token)).status_code == 200
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one in sixteen tokens ends with "0"
    assert client.http.get("/api/repositories", headers=bearer(wrong)).status_code == 401
    assert client.http.get("/api/repositories", headers=bearer("docora_short")).status_code == 401
    assert client.http.get("/api/repositories").status_code == 401


def test_client_routes_are_rate_limited_per_app(client, monkeypatch):
    limited = fake_configs(app_rate_limit_per_minute=2)
    monkeypatch.setattr(wiring, "configs", lambda: limited)
    token = onboard(client).json_body["token"]

    statuses = [client.http.get("/api/repositories", headers=bearer(token)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_api_gateway_answers_its_own_not_found_with_404_in_the_protocol_shape():
    # API Gateway's own "no such resource" reply (MISSING_AUTHENTICATION_TOKEN, a 403 by default) is
    # remapped in the API definition itself, so the first deployment already carries it; gateway
    # response resources would only take effect at the next deployment of the API.
    body = json.loads(MERGE_TEMPLATE.read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    response = body["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]

    assert response["statusCode"] == "404"
    assert json.loads(response["responseTemplates"]["application/json"]) == {
        "error": "not_found",
        "message": "no such path",
    }


def test_a_wrong_method_gets_the_protocol_error_shape(client):
    response = client.http.put("/api/repositories", body="{}")

    assert response.status_code == 405
    assert response.json_body["error"] == "method_not_allowed"


def test_an_unexpected_failure_is_a_500_without_detail(client, deps, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("password=hunter2 in a stack trace")

    monkeypatch.setattr(deps.store, "transaction", explode)
    token_headers = bearer("docora_" + "a" * 64)

    response = client.http.get("/api/repositories", headers=token_headers)

    assert response.status_code == 500
    assert response.json_body == {"error": "internal", "message": "internal error"}


def test_health_reports_each_dependency(client, deps):
    healthy = client.http.get("/health")
    deps.store.pings_fail = True
    degraded = client.http.get("/health")

    assert healthy.status_code == 200
    assert healthy.json_body["checks"] == {"database": "ok", "redis": "ok", "queues": "ok"}
    assert degraded.status_code == 503
    assert degraded.json_body["checks"]["database"] == "unavailable"
    assert degraded.json_body["status"] == "degraded"


def test_version_has_the_original_fields(client):
    body = client.http.get("/version").json_body

    assert set(body) == {"version", "buildNumber", "gitSha", "buildDate"}


def test_openapi_lists_every_route_and_docs_need_no_internet(client):
    document = client.http.get("/openapi.json").json_body
    page = client.http.get("/docs")

    assert document["openapi"].startswith("3.")
    assert {"/health", "/version", "/api/apps/onboard", "/api/repositories"} <= set(document["paths"])
    assert set(document["paths"]["/api/repositories/{repository_id}"]) == {"get", "delete"}
    assert page.status_code == 200
    assert "openapi.json" in page.body.decode()
    assert "http://" not in page.body.decode() and "https://" not in page.body.decode()


def test_docs_is_swagger_ui_from_this_deployment_under_a_policy_with_no_inline_script(client):
    page = client.http.get("/docs")
    bundle = client.http.get("/docs/assets/swagger-ui-bundle.js")
    elsewhere = client.http.get("/docs/assets/..%2F..%2Fdocs.html")

    assert "docs/assets/swagger-ui-bundle.js" in page.body.decode() and "<script>" not in page.body.decode()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert bundle.status_code == 200 and bundle.headers["Content-Type"].startswith("text/javascript")
    assert elsewhere.status_code == 404


def test_the_deployment_turns_on_partial_batch_failure_for_every_consumer():
    # Without ReportBatchItemFailures a returned batchItemFailures list is ignored and failed
    # messages are deleted (aws/chalice#2029).
    import app

    resources = json.loads(MERGE_TEMPLATE.read_text())["Resources"]
    consumers = [source.name for source in app.app.event_sources if hasattr(source, "queue")]

    assert consumers
    for name in consumers:
        logical = "".join(part.title() for part in name.split("_"))
        event = resources[logical]["Properties"]["Events"][f"{logical}SqsEventSource"]
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_route_is_a_declared_endpoint_and_every_endpoint_is_in_the_openapi_document():
    import app
    from chalicelib.edge import openapi
    from chalicelib.edge.endpoints import ENDPOINTS

    served = {
        (method.lower(), path): entry.view_name
        for path, methods in app.app.routes.items()
        for method, entry in methods.items()
        # The catch-all that answers unknown paths 404, the dashboard's HTML pages and /docs's files are no part of
        # the API.
        if path not in ("/{proxy+}", "/docs/assets/{name}") and not (path == "/admin" or path.startswith("/admin/"))
    }
    declared = {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}
    documented = {(method, path) for path, methods in openapi.document()["paths"].items() for method in methods}

    undeclared = {route: view for route, view in served.items() if route not in declared}
    assert all(view.startswith("refuse_method_") for view in undeclared.values()), undeclared
    assert declared == documented
    assert len(declared) == len(ENDPOINTS)  # no endpoint declared twice


def test_every_operator_route_is_under_its_own_tag_and_needs_the_operator_key():
    from chalicelib.edge import openapi

    for path, methods in openapi.document()["paths"].items():
        for operation in methods.values():
            if path.startswith("/api/admin/"):
                assert operation["tags"] == ["admin"] and operation["security"] == [{"operatorKey": []}]
                assert "401" in operation["responses"]
