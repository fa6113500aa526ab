"""The dashboard in a real browser: signing in and out, the overview, searching apps, actions with their CSRF token,
onboarding's secrets shown once, retries from the failed-deliveries page, and a bulk resync's live progress."""

from __future__ import annotations

import os
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from chalicelib.services import onboarding, operations
from docora_local.harness.settings import TEST_ADMIN_API_KEY
from tests.unit.test_operator_services import add_watch

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def wait_for(browser, condition, seconds: float = 10):
    return WebDriverWait(browser, seconds).until(condition)


def follow(browser, by: str, value: str, *, confirm: bool = False) -> None:
    """Click a link or a form's button and wait for the next page (after accepting its confirmation, if it asks)."""
    element = browser.find_element(by, value)
    element.click()
    if confirm:
        wait_for(browser, expected_conditions.alert_is_present()).accept()
    wait_for(browser, expected_conditions.staleness_of(element))


def sign_in(browser, served, key: str = TEST_ADMIN_API_KEY, *, here: bool = False) -> None:
    """Sign in on the sign-in page already shown (`here`), or on a fresh one."""
    if not here:
        browser.get(served.url + "/admin/login")
    browser.find_element(By.ID, "key").send_keys(key)
    follow(browser, By.CSS_SELECTOR, "form button[type=submit]")


def onboard(served, name: str) -> str:
    request = onboarding.Onboarding(app_name=name, email="ops@example.com", base_url="https://receiver.example.com")
    return onboarding.onboard(request, allow_private_targets=True, deps=served.deps).app.id


def heading(browser) -> str:
    return browser.find_element(By.TAG_NAME, "h1").text


def screenshot(browser, name: str) -> None:
    """docs/screenshots/<name>.png, when DOCORA_SCREENSHOTS=1 (make screenshots) asks for them."""
    if os.environ.get("DOCORA_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_signing_in_shows_the_overview_and_signing_out_refuses_the_next_visit(browser, served):
    browser.get(served.url + "/admin/apps")
    assert "/admin/login" in browser.current_url

    sign_in(browser, served, key="not-the-key", here=True)
    refused = browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    sign_in(browser, served, here=True)

    assert "not the operator key" in refused
    assert browser.current_url.endswith("/admin/apps")  # back where the visit started
    follow(browser, By.LINK_TEXT, "Overview")
    assert heading(browser).startswith("Overview")
    screenshot(browser, "overview")
    follow(browser, By.CSS_SELECTOR, ".signout button")
    assert "/admin/login" in browser.current_url
    browser.get(served.url + "/admin")
    assert "/admin/login" in browser.current_url


def test_the_overview_refreshes_itself(browser, served):
    sign_in(browser, served)
    browser.get(served.url + "/admin")
    first = browser.find_element(By.CSS_SELECTOR, "h1 small").text

    onboard(served, "Arrived later")

    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "h1 small").text != first, seconds=15)
    assert browser.find_element(By.CSS_SELECTOR, ".stat .big").text == "1"


def test_apps_are_searched_and_an_app_is_paused_and_resumed(browser, served):
    for name in ("Docs mirror", "Handbook", "<script>alert(1)</script>"):
        onboard(served, name)
    sign_in(browser, served)
    browser.get(served.url + "/admin/apps")

    search = browser.find_element(By.ID, "search")
    search.send_keys("handbook")
    search.submit()
    wait_for(browser, expected_conditions.staleness_of(search))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
    assert len(rows) == 1 and "Handbook" in rows[0].text
    browser.get(served.url + "/admin/apps")
    assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "table").text  # shown as text
    screenshot(browser, "apps")
    follow(browser, By.LINK_TEXT, "Handbook")
    follow(browser, By.XPATH, "//button[text()='Pause deliveries']")

    assert browser.find_element(By.ID, "delivery-state").text == "paused"
    follow(browser, By.XPATH, "//button[text()='Resume deliveries']")
    assert browser.find_element(By.ID, "delivery-state").text == "active"


def test_onboarding_shows_the_token_and_key_once_with_copy_buttons(browser, served):
    sign_in(browser, served)
    browser.get(served.url + "/admin/onboard")

    for field, value in (("app_name", "Docs site"), ("email", "ops@example.com"),
                         ("base_url", "https://receiver.example.com/hooks")):  # fmt: skip
        browser.find_element(By.ID, field).send_keys(value)
    follow(browser, By.XPATH, "//button[text()='Onboard']")
    token = browser.find_element(By.ID, "token").get_attribute("value")
    key = browser.find_element(By.ID, "client_auth_key").get_attribute("value")
    copy = browser.find_element(By.CSS_SELECTOR, "button[data-copy=token]")
    copy.click()

    assert token.startswith("docora_") and len(key) == 64
    assert "you will not see them again" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    wait_for(browser, lambda b: copy.text == "Copied")
    follow(browser, By.PARTIAL_LINK_TEXT, "open the app")
    assert heading(browser) == "Docs site" and token not in browser.page_source and key not in browser.page_source


def test_a_failed_watch_is_retried_from_the_failed_deliveries_page(browser, served):
    app_id = onboard(served, "Failing receiver")
    repository_id = add_watch(served.deps, app_id, "widgets", failed=True)
    sign_in(browser, served)
    browser.get(served.url + "/admin/failed")
    screenshot(browser, "failed")

    follow(browser, By.XPATH, "//table//button[text()='Retry']")

    assert "No failed delivery matches." in browser.find_element(By.TAG_NAME, "table").text
    with served.deps.store.transaction() as tx:
        assert tx.watches.get(app_id, repository_id).status == "pending"


def test_a_bulk_resync_shows_its_progress_live_and_can_be_cancelled(browser, served):
    app_id = onboard(served, "Many repositories")
    for name in ("one", "two", "three", "four"):
        add_watch(served.deps, app_id, name)
    sign_in(browser, served)
    browser.get(served.url + f"/admin/apps/{app_id}")

    follow(browser, By.XPATH, "//button[text()='Resync everything']", confirm=True)
    wait_for(browser, lambda b: "/admin/operations/op_" in b.current_url)
    assert browser.find_element(By.ID, "done").text == "1"  # the first batch (SWEEP_BATCH_SIZE=1 here) at once
    operation_id = browser.current_url.rsplit("/", 1)[1]
    operations.advance(operation_id, now=_now(), batch_size=1, deps=served.deps)  # as the next sweep would

    wait_for(browser, lambda b: b.find_element(By.ID, "done").text == "2", seconds=15)
    screenshot(browser, "operation")
    follow(browser, By.XPATH, "//button[text()='Cancel']", confirm=True)
    wait_for(browser, lambda b: b.find_element(By.ID, "operation-status").text == "cancelled")


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("path", ["/admin/static/dashboard.js", "/admin/static/dashboard.css"])
def test_the_static_files_load_without_a_session(served, path):
    with urllib.request.urlopen(served.url + path) as response:  # the sign-in page needs them too
        assert response.status == 200 and b"Docora" in response.read()
