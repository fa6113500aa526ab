"""Registering, listing, showing, unwatching repositories and replacing their token, with fakes."""

from __future__ import annotations

import json

import pytest

from chalicelib import errors
from tests.unit.conftest import admin_headers, bearer

ONBOARDING = {"base_url": "https://receiver.example.com/hooks", "app_name": "Mirror", "email": "ops@example.com"}
PRIVATE_TOKEN = "ghp_" + "a" * 36
OTHER_TOKEN = "ghp_" + "b" * 36


@pytest.fixture
def token(client):
    return client.http.post("/api/apps/onboard", headers=admin_headers(), body=json.dumps(ONBOARDING)).json_body[
        "token"
    ]


@pytest.fixture
def github(deps):
    deps.github.add("vercel", "next.js")
    deps.github.add("acme", "secret", private=True, token=PRIVATE_TOKEN, branches=("main", "release"))
    return deps.github


def register(client, token, **body):
    return client.http.post("/api/repositories", headers=bearer(token), body=json.dumps(body))


def test_registering_stores_the_watch_and_requests_a_scan(client, deps, github, token):
    response = register(client, token, github_url="https://GitHub.com/Vercel/next.js.git/")

    assert response.status_code == 201
    body = response.json_body
    assert body["github_url"] == "https://github.com/vercel/next.js"
    assert (body["owner"], body["name"], body["branch"], body["is_private"]) == ("vercel", "next.js", "main", False)
    assert body["status"] == "pending"
    assert deps.scan_queue.requested == [body["repository_id"]]


def test_registering_twice_returns_the_existing_watch(client, deps, github, token):
    first = register(client, token, github_url="https://github.com/vercel/next.js")
    second = register(client, token, github_url="https://github.com/vercel/next.js.git")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json_body["repository_id"] == second.json_body["repository_id"]
    assert len(deps.store.tables.watches) == 1
    assert len(deps.scan_queue.requested) == 1


def test_two_apps_share_one_repository(client, deps, github, token):
    other = client.http.post("/api/apps/onboard", headers=admin_headers(), body=json.dumps(ONBOARDING))

    first = register(client, token, github_url="https://github.com/vercel/next.js")
    second = register(client, other.json_body["token"], github_url="https://github.com/vercel/next.js")

    assert second.status_code == 201
    assert first.json_body["repository_id"] == second.json_body["repository_id"]
    assert len(deps.store.tables.repositories) == 1


def test_a_private_repository_needs_its_token_which_is_stored_encrypted(client, deps, github, token):
    without = register(client, token, github_url="https://github.com/acme/secret")
    with_token = register(client, token, github_url="https://github.com/acme/secret", github_token=PRIVATE_TOKEN)

    assert without.status_code == 404
    assert with_token.status_code == 201
    assert with_token.json_body["is_private"] is True
    (watch,) = deps.store.tables.watches.values()
    assert PRIVATE_TOKEN not in watch.github_token_encrypted
    assert deps.cipher.decrypt(watch.github_token_encrypted) == PRIVATE_TOKEN


def test_a_branch_other_than_the_default_must_exist(client, github, token):
    url = "https://github.com/acme/secret"

    good = register(client, token, github_url=url, github_token=PRIVATE_TOKEN, branch="release")
    missing = register(client, token, github_url=url, github_token=PRIVATE_TOKEN, branch="nope")
    malformed = register(client, token, github_url=url, github_token=PRIVATE_TOKEN, branch="a..b")

    assert good.status_code == 201 and good.json_body["branch"] == "release"
    assert missing.status_code == 400 and missing.json_body["details"][0]["field"] == "branch"
    assert malformed.status_code == 400 and malformed.json_body["details"][0]["field"] == "branch"


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (errors.NotFound("repository not found"), 404, "not_found"),
        (errors.Unprocessable("GitHub rejected the token"), 422, "unprocessable"),
        (errors.Unavailable("GitHub rate limit reached", retry_after=42), 503, "unavailable"),
    ],
)
def test_github_refusals_are_mapped_and_store_nothing(client, deps, github, token, failure, status, code):
    github.failure = failure

    response = register(client, token, github_url="https://github.com/vercel/next.js")

    assert (response.status_code, response.json_body["error"]) == (status, code)
    assert deps.store.tables.watches == {}
    if status == 503:
        assert response.headers["Retry-After"] == "42"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"github_url": "https://gitlab.com/a/b"}, "github_url"),
        ({"github_url": "https://github.com/a/b/c"}, "github_url"),
        ({"github_url": "https://github.com/../etc"}, "github_url"),
        ({"github_url": "https://github.com/vercel/next.js", "github_token": "not-a-token"}, "github_token"),
        ({"github_url": 5}, "github_url"),
        ({}, "github_url"),
        ({"github_url": "https://github.com/vercel/next.js", "extra": 1}, "extra"),
    ],
)
def test_bad_registrations_name_the_field(client, deps, github, token, body, field):
    response = register(client, token, **body)

    assert response.status_code == 400
    assert field in [detail["field"] for detail in response.json_body["details"]]
    assert deps.store.tables.watches == {}
    assert "not-a-token" not in json.dumps(response.json_body)


def test_a_scan_queue_outage_keeps_the_registration(client, deps, github, token):
    deps.scan_queue.available = False

    response = register(client, token, github_url="https://github.com/vercel/next.js")

    assert response.status_code == 201
    assert len(deps.store.tables.watches) == 1


def test_listing_and_showing_only_cover_the_callers_watches(client, github, token):
    other = client.http.post("/api/apps/onboard", headers=admin_headers(), body=json.dumps(ONBOARDING))
    mine = register(client, token, github_url="https://github.com/vercel/next.js").json_body["repository_id"]

    listed = client.http.get("/api/repositories", headers=bearer(token)).json_body["repositories"]
    shown = client.http.get(f"/api/repositories/{mine}", headers=bearer(token))
    theirs = client.http.get(f"/api/repositories/{mine}", headers=bearer(other.json_body["token"]))
    others_list = client.http.get("/api/repositories", headers=bearer(other.json_body["token"])).json_body

    assert [item["repository_id"] for item in listed] == [mine]
    assert shown.status_code == 200
    assert shown.json_body["circuit"] == {"status": "closed", "consecutive_failures": 0, "open_until": None}
    assert theirs.status_code == 404
    assert others_list == {"repositories": []}


def test_unwatching_the_last_watch_removes_the_repository(client, deps, github, token):
    repository_id = register(client, token, github_url="https://github.com/vercel/next.js").json_body["repository_id"]

    deleted = client.http.delete(f"/api/repositories/{repository_id}", headers=bearer(token))
    again = client.http.delete(f"/api/repositories/{repository_id}", headers=bearer(token))

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert deps.store.tables.repositories == {}


def test_unwatching_keeps_a_repository_another_app_watches(client, deps, github, token):
    other = client.http.post("/api/apps/onboard", headers=admin_headers(), body=json.dumps(ONBOARDING))
    repository_id = register(client, token, github_url="https://github.com/vercel/next.js").json_body["repository_id"]
    register(client, other.json_body["token"], github_url="https://github.com/vercel/next.js")

    client.http.delete(f"/api/repositories/{repository_id}", headers=bearer(token))

    assert list(deps.store.tables.repositories) == [repository_id]


def test_replacing_the_token_checks_it_with_github_first(client, deps, github, token):
    url = "https://github.com/acme/secret"
    repository_id = register(client, token, github_url=url, github_token=PRIVATE_TOKEN).json_body["repository_id"]
    path = f"/api/repositories/{repository_id}/token"

    refused = client.http.patch(path, headers=bearer(token), body=json.dumps({"github_token": OTHER_TOKEN}))
    accepted = client.http.patch(path, headers=bearer(token), body=json.dumps({"github_token": PRIVATE_TOKEN}))
    missing = client.http.patch(path, headers=bearer(token), body=json.dumps({}))

    assert refused.status_code == 404
    assert accepted.status_code == 200
    assert missing.status_code == 400 and missing.json_body["details"][0]["field"] == "github_token"


def test_replacing_the_token_of_a_repository_not_watched_is_404(client, github, token):
    path = "/api/repositories/repo_0123456789abcdef01234567/token"

    response = client.http.patch(path, headers=bearer(token), body=json.dumps({"github_token": PRIVATE_TOKEN}))

    assert response.status_code == 404


def test_repository_routes_need_a_token(client):
    assert client.http.get("/api/repositories/repo_0123456789abcdef01234567").status_code == 401
    assert client.http.delete("/api/repositories/repo_0123456789abcdef01234567").status_code == 401
    assert client.http.post("/api/repositories", body="{}").status_code == 401
