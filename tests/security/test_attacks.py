"""Attack cases against the API with in-memory fakes: SSRF through onboarding, authentication bypass,
cross-app access, hostile bodies and repository names. (The end-to-end secret scan is in test_secrets.py.)"""

from __future__ import annotations

import hmac
import json

import pytest

from chalicelib.domain import github_events, tokens
from docora_local.harness.settings import TEST_ADMIN_API_KEY
from tests.unit.conftest import admin_headers, bearer

pytestmark = pytest.mark.usefixtures("offline")

PRIVATE_NAMES = {
    "internal.example.com": ["10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "loop.example.com": ["127.0.0.1"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.1"],
    "v6.example.com": ["::1"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "receiver.example.com": ["93.184.216.34"],
}
SSRF_REFUSED = [
    "https://127.0.0.1/", "https://127.1/", "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/",
    "https://0x7f.1/", "https://10.0.0.1/", "https://10.255.255.255/", "https://172.16.0.1/", "https://172.31.255.1/",
    "https://192.168.0.1/", "https://169.254.169.254/", "https://100.64.0.1/", "https://100.127.255.254/",
    "https://0.0.0.0/", "https://224.0.0.1/", "https://239.255.255.250/", "https://240.0.0.1/",
    "https://255.255.255.255/", "https://192.0.0.1/", "https://192.0.2.1/", "https://198.18.0.1/",
    "https://198.51.100.1/", "https://203.0.113.1/", "https://[::1]/", "https://[::]/", "https://[fe80::1]/",
    "https://[fc00::1]/", "https://[fd12:3456::1]/", "https://[ff02::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:10.0.0.1]/", "https://[64:ff9b::a00:1]/", "https://[2002:a00:1::]/", "https://[2001::1]/",
    "https://[2001:db8::1]/", "https://[fec0::1]/", "https://localhost/", "https://app.localhost/",
    "https://printer.local/", "https://db.internal/", "https://internal.example.com/",
    "https://metadata.example.com/", "https://loop.example.com/", "https://mixed.example.com/",
    "https://v6.example.com/", "https://mapped.example.com/", "https://unresolvable.example.com/",
    "http://receiver.example.com/", "ftp://receiver.example.com/", "https://user:pass@receiver.example.com/",
    "https://receiver.example.com/?q=1", "javascript:alert(1)", "https://", "receiver.example.com",
]  # fmt: skip


@pytest.fixture
def resolving(deps):
    deps.resolver.table.update(PRIVATE_NAMES)
    return deps


def onboard(client, base_url: str):
    body = {"base_url": base_url, "app_name": "x", "email": "x@example.com"}
    return client.http.post("/api/apps/onboard", headers=admin_headers(), body=json.dumps(body))


def test_the_ssrf_matrix_has_at_least_forty_cases():
    assert len(SSRF_REFUSED) >= 40


@pytest.mark.parametrize("base_url", SSRF_REFUSED)
def test_onboarding_refuses_every_private_or_malformed_webhook_target(client, resolving, base_url):
    response = onboard(client, base_url)

    assert response.status_code == 400, base_url
    assert response.json_body["details"][0]["field"] == "base_url"
    assert resolving.store.tables.apps == {}


def test_a_public_target_is_accepted(client, resolving):
    assert onboard(client, "https://receiver.example.com/hooks").status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic ZG9jb3JhOnNlY3JldA==",
        "Token docora_" + "a" * 64,
        "Bearer docora_" + "a" * 64,
        "Bearer docora_" + "A" * 64,
        "Bearer docora_" + "a" * 63,
        "Bearer docora_" + "a" * 64 + "0",
        "Bearer " + TEST_ADMIN_API_KEY,
        "Bearer ' OR 1=1 --",
        "Bearer docora_" + "a" * 64 + "\x00",
    ],
)
def test_client_routes_refuse_every_malformed_or_foreign_credential(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    for method, path in [("GET", "/api/repositories"), ("GET", "/api/apps/me"), ("POST", "/api/apps/me/rotate-token")]:
        response = client.http.request(method, path, headers=headers, body=b"")
        assert response.status_code == 401, (authorization, path)
        assert response.json_body["error"] == "unauthorized"


def test_operator_routes_refuse_an_app_token(client, resolving):
    token = onboard(client, "https://receiver.example.com").json_body["token"]

    assert client.http.get("/api/admin/overview", headers=bearer(token)).status_code == 401
    assert client.http.post("/api/apps/onboard", headers=bearer(token), body=b"{}").status_code == 401


def test_one_app_can_neither_read_nor_change_another_apps_repository(client, resolving):
    resolving.github.add("acme", "widgets")
    owner = onboard(client, "https://receiver.example.com").json_body["token"]
    intruder = onboard(client, "https://receiver.example.com").json_body["token"]
    body = json.dumps({"github_url": "https://github.com/acme/widgets"})
    repository_id = client.http.post("/api/repositories", headers=bearer(owner), body=body).json_body["repository_id"]
    token_body = json.dumps({"github_token": "ghp_" + "a" * 36})

    attempts = [
        client.http.get(f"/api/repositories/{repository_id}", headers=bearer(intruder)),
        client.http.get(f"/api/repositories/{repository_id}/deliveries", headers=bearer(intruder)),
        client.http.delete(f"/api/repositories/{repository_id}", headers=bearer(intruder)),
        client.http.patch(f"/api/repositories/{repository_id}/token", headers=bearer(intruder), body=token_body),
        client.http.post(f"/api/repositories/{repository_id}/resync", headers=bearer(intruder)),
    ]

    assert [response.status_code for response in attempts] == [404] * 5
    assert client.http.get(f"/api/repositories/{repository_id}", headers=bearer(owner)).status_code == 200
    assert resolving.delivery_queue.requested == []


@pytest.mark.parametrize(
    "github_url",
    [
        "https://github.com/../../etc/passwd",
        "https://github.com/acme/..",
        "https://github.com/acme/%2e%2e",
        "https://github.com/acme/widgets/../../x",
        "https://github.com/acme\\widgets",
        "https://github.com/acme/wid gets",
        "https://github.com/acme/widgets\x00",
        "file:///etc/passwd",
        "https://github.com.evil.example/acme/widgets",
        "https://evil.example/github.com/acme/widgets",
    ],
)
def test_hostile_repository_names_are_refused(client, resolving, github_url):
    token = onboard(client, "https://receiver.example.com").json_body["token"]

    response = client.http.post("/api/repositories", headers=bearer(token), body=json.dumps({"github_url": github_url}))

    assert response.status_code == 400
    assert resolving.github.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"base_url":' * 3000 + b"1" + b"}" * 3000,
        json.dumps({"base_url": "https://receiver.example.com", "app_name": "x" * 100_000}).encode(),
        b'{"base_url": "https://receiver.example.com", "app_name": "x", "email": "x@example.com", "a": ' + b"[" * 20000,
        '{"app_name": "\udcff"}'.encode("utf-8", "surrogatepass"),
    ],
    ids=["deeply nested", "oversized", "unterminated nesting", "lone surrogate"],
)
def test_hostile_bodies_are_refused_plainly(client, deps, body):
    response = client.http.post("/api/apps/onboard", headers=admin_headers(), body=body)

    assert response.status_code == 400
    assert deps.store.tables.apps == {}


@pytest.mark.parametrize("field", ["app_name", "email", "description", "website"])
def test_a_nul_character_in_a_profile_field_is_refused_naming_the_field(client, resolving, field):
    valid = {"base_url": "https://receiver.example.com", "app_name": "x", "email": "x@example.com"}
    poisoned = {"app_name": "a\x00b", "email": "a\x00b@example.com", "description": "\x00", "website": "https://a\x00b"}
    token = onboard(client, "https://receiver.example.com").json_body["token"]

    onboarding = client.http.post(
        "/api/apps/onboard", headers=admin_headers(), body=json.dumps(valid | {field: poisoned[field]})
    )
    patching = client.http.patch("/api/apps/me", headers=bearer(token), body=json.dumps({field: poisoned[field]}))

    for response in (onboarding, patching):
        assert response.status_code == 400
        assert [detail["field"] for detail in response.json_body["details"]] == [field]
    assert len(resolving.store.tables.apps) == 1


def test_a_nul_character_in_an_operator_search_is_refused_naming_the_field(client):
    response = client.http.get("/api/admin/apps?search=%00", headers=admin_headers())

    assert response.status_code == 400
    assert response.json_body["details"] == [{"field": "search", "message": "must not contain NUL characters"}]


def test_a_json_object_with_a_key_given_twice_is_refused_rather_than_guessed(client, deps):
    body = (
        b'{"base_url": "https://receiver.example.com", "app_name": "x", "email": "x@example.com", "email": "y@e.com"}'
    )

    response = client.http.post("/api/apps/onboard", headers=admin_headers(), body=body)

    assert response.status_code == 400
    assert response.json_body["details"] == [{"field": "email", "message": "is given more than once"}]
    assert deps.store.tables.apps == {}


def test_a_known_path_called_with_the_wrong_method_is_405_with_allow_not_404(client):
    response = client.http.delete("/api/apps/onboard", headers=admin_headers())

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_secret_comparisons_are_constant_time(monkeypatch):
    calls = []
    original = hmac.compare_digest

    def counting(a, b):
        calls.append(True)
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)

    tokens.same_secret(TEST_ADMIN_API_KEY, "guess")
    github_events.signature_matches("secret", b"{}", "sha256=" + "0" * 64)

    assert len(calls) == 2
