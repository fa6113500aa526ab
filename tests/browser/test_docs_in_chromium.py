"""/docs in a real browser: Swagger UI, vendored, renders the API's document offline and sends a request from the page
("Try it out") to the same deployment, with nothing blocked by the Content-Security-Policy."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def test_swagger_ui_lists_the_operations_and_tries_one_out(browser, served):
    browser.get(served.url + "/docs")
    wait = WebDriverWait(browser, 15)

    health = wait.until(expected_conditions.element_to_be_clickable((By.ID, "operations-service-get_health")))
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock")
    health.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))).click()
    wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".execute"))).click()
    status = wait.until(
        expected_conditions.visibility_of_element_located(
            (By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status")
        )
    )

    assert len(operations) > 30
    assert status.text.strip() == "200"
    assert "Authorize" in browser.find_element(By.CSS_SELECTOR, ".auth-wrapper").text
    assert browser.find_element(By.CSS_SELECTOR, ".request-url pre").text == served.url + "/health"
