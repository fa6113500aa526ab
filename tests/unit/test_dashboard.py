"""The operator dashboard on the fakes: sign-in, sessions and CSRF, the headers, and each page's view."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.apps import PausedBy
from tests.dashboard_client import Browser
from tests.unit.test_operator_services import add_app, add_watch


@pytest.fixture
def browser(client) -> Browser:
    return Browser(client)


@pytest.fixture
def signed_in(browser) -> Browser:
    assert browser.sign_in().status_code == 303
    return browser


def test_a_browser_without_a_session_is_sent_to_sign_in(browser):
    response = browser.get("/admin/apps")

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/login?next=%2Fadmin%2Fapps"


def test_an_api_client_without_a_session_gets_401_json(client):
    response = client.http.get("/admin/apps", headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert json.loads(response.body)["error"] == "unauthorized"


def test_signing_in_sets_a_strict_http_only_cookie_and_returns_to_the_page_asked_for(browser):
    response = browser.sign_in(next_path="/admin/failed")

    cookie = response.headers["Set-Cookie"]
    assert response.status_code == 303 and response.headers["Location"] == "/admin/failed"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http here; over https the cookie is Secure, as the next test shows


def test_the_cookie_is_secure_when_served_over_https(browser):
    page = browser.get("/admin/login", **{"X-Forwarded-Proto": "https"})

    assert "; Secure" in page.headers["Set-Cookie"]


def test_the_session_id_changes_at_every_sign_in(signed_in):
    first = signed_in.cookies["docora_session"]

    signed_in.sign_in()

    assert signed_in.cookies["docora_session"] != first
    signed_in.cookies["docora_session"] = first
    assert signed_in.get("/admin").status_code == 303  # the old session was ended


def test_a_next_page_elsewhere_is_ignored(browser):
    response = browser.sign_in(next_path="//evil.example/admin")

    assert response.headers["Location"] == "/admin"


def test_the_wrong_key_is_refused_then_rate_limited(browser, configs):
    statuses = [browser.sign_in(key="not-the-key").status_code for _ in range(configs.access.login_attempts_per_minute)]

    assert set(statuses) == {401}
    assert browser.sign_in().status_code == 429
    assert "docora_session" not in browser.cookies


def test_signing_in_needs_the_login_forms_token(browser):
    browser.get("/admin/login")

    response = browser.post("/admin/login", {"login_token": "forged", "key": "x"}, csrf=False)

    assert response.status_code == 403


def test_every_page_sends_the_security_headers(signed_in):
    response = signed_in.get("/admin")

    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_a_change_without_the_csrf_token_is_forbidden(signed_in, deps):
    app_id = add_app(deps)

    missing = signed_in.post(f"/admin/apps/{app_id}/pause", csrf=False)
    wrong = signed_in.post(f"/admin/apps/{app_id}/pause", {"csrf_token": "forged"})

    assert missing.status_code == 403 and wrong.status_code == 403
    with deps.store.transaction() as tx:
        assert tx.apps.get(app_id).delivery_state == "active"


def test_pause_and_resume_from_the_app_page(signed_in, deps):
    app_id = add_app(deps)

    paused = signed_in.post(f"/admin/apps/{app_id}/pause")
    with deps.store.transaction() as tx:
        state_after_pause = tx.apps.get(app_id)
    signed_in.post(f"/admin/apps/{app_id}/resume")

    assert paused.status_code == 303 and paused.headers["Location"] == f"/admin/apps/{app_id}?notice=paused"
    assert state_after_pause.delivery_state == "paused" and state_after_pause.paused_by == PausedBy.OPERATOR
    with deps.store.transaction() as tx:
        assert tx.apps.get(app_id).delivery_state == "active"


def test_a_name_with_markup_is_shown_escaped(signed_in, deps):
    add_app(deps, name="<script>alert(1)</script>")

    page = signed_in.text("/admin/apps")

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_apps_are_searched_and_paged(signed_in, deps):
    for number in range(30):
        add_app(deps, name=f"Mirror {number:02}")
    add_app(deps, name="Handbook")

    found = signed_in.text("/admin/apps?search=handbook")
    first = signed_in.text("/admin/apps?sort=app_name&order=asc")

    assert "Handbook" in found and "Mirror 01" not in found
    assert "Handbook" in first and "1\N{EN DASH}25 of 31" in first and "offset=25" in first


def test_the_overview_shows_counts_by_status(signed_in, deps):
    app_id = add_app(deps)
    add_watch(deps, app_id, "a", failed=True)
    add_watch(deps, app_id, "b")

    page = signed_in.text("/admin")

    assert "1 failed" in page and "1 pending" in page and 'data-refresh="10"' in page


def test_the_app_page_lists_its_watches_and_actions(signed_in, deps):
    app_id = add_app(deps)
    add_watch(deps, app_id, "widgets", failed=True)

    page = signed_in.text(f"/admin/apps/{app_id}")

    assert "acme/widgets" in page and "the receiver answered 500" in page and "Pause deliveries" in page


def test_the_delete_confirmation_says_what_goes_then_the_app_goes(signed_in, deps):
    app_id = add_app(deps)
    other = add_app(deps, name="Other")
    add_watch(deps, app_id, "only-mine")
    shared = add_watch(deps, app_id, "shared")
    with deps.store.transaction() as tx:
        from chalicelib.domain.repositories import NewWatch

        tx.watches.add(NewWatch(other, shared, None))

    confirmation = signed_in.text(f"/admin/apps/{app_id}/delete")
    deleted = signed_in.post(f"/admin/apps/{app_id}/delete")

    assert "github.com/acme/only-mine" in confirmation and "github.com/acme/shared" not in confirmation
    assert "2 watches" in confirmation
    assert deleted.status_code == 303
    with deps.store.transaction() as tx:
        assert tx.apps.get(app_id) is None


def test_failed_deliveries_are_filtered_and_retried_in_bulk(signed_in, deps):
    app_id = add_app(deps)
    add_watch(deps, app_id, "widgets", failed=True)
    add_watch(deps, app_id, "gadgets", failed=True)

    page = signed_in.text("/admin/failed?repository=widgets")
    retried = signed_in.post("/admin/failed/retry", {"repository": "widgets"})
    operation = signed_in.text(retried.headers["Location"])

    assert "acme/widgets" in page and "acme/gadgets" not in page and "Retry all 1 matching" in page
    assert "1</span> of 1 watches queued" in operation and "done" in operation
    assert len(deps.delivery_queue.requested) == 1


def test_onboarding_shows_the_secrets_once(signed_in, deps):
    form = {"app_name": "Docs", "email": "ops@example.com", "base_url": "https://receiver.example.com/hooks"}

    page = signed_in.post("/admin/onboard", form).body.decode()

    assert "you will not see them again" in page and 'value="docora_' in page and "data-copy" in page
    (app,) = [app for app, _ in deps.store.tables.apps.values()]
    assert signed_in.text(f"/admin/apps/{app.id}").count("docora_") == 0


def test_onboarding_with_a_bad_email_says_which_field(signed_in):
    form = {"app_name": "Docs", "email": "nope", "base_url": "https://receiver.example.com/hooks"}

    response = signed_in.post("/admin/onboard", form)

    assert response.status_code == 400 and 'aria-invalid="true"' in response.body.decode()


def test_the_repositories_page_shows_the_apps_watching_and_resets_a_circuit(signed_in, deps):
    app_id = add_app(deps, name="Watcher")
    repository_id = add_watch(deps, app_id, "widgets")

    page = signed_in.text("/admin/repositories")
    reset = signed_in.post(f"/admin/repositories/{repository_id}/reset-circuit")

    assert "github.com/acme/widgets" in page and "Watcher" in page
    assert reset.status_code == 303 and deps.scan_queue.requested


def test_signing_out_ends_the_session(signed_in):
    cookie = signed_in.cookies["docora_session"]

    signed_in.post("/admin/logout")
    signed_in.cookies["docora_session"] = cookie

    assert signed_in.get("/admin").status_code == 303


def test_an_unknown_app_is_a_404_page(signed_in):
    assert signed_in.get("/admin/apps/app_000000000000000000000000").status_code == 404
