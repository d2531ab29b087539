"""A real browser on the operators' dashboard: headless Chromium (Debian's package) driven by Playwright."""

import os
import shutil
from pathlib import Path

import pytest

from integrations.models import Kind
from monitoring import alerts, health

from .conftest import script

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium` "
        "to run the dashboard's browser test",
    ),
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made meanwhile are fine.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    # The live server's database sessions are left to the suite's end (tests/conftest.py): ending
    # them here broke the next live-server test on PostgreSQL (its connections terminated).


@pytest.mark.django_db(transaction=True)
def test_operator_sees_every_provider_state_on_the_admin_index(
    browser, live_server, make_provider, django_user_model, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_user_model.objects.create_superuser("operator", "op@eishro.ly", "op-pass-123")
    make_provider(kind=Kind.PAYMENT, name="moamalat", display_name="Moamalat")
    slow = make_provider(kind=Kind.SHIPPING, name="amyal", display_name="Amyal Express")
    down = make_provider(kind=Kind.TELECOM, name="almadar", display_name="Almadar Aljadid")
    script(slow, sleep_s=0.6)
    script(down, fail="status")
    health.run_round()
    alerts.process_changes()
    make_provider(kind=Kind.TELECOM, name="libyana", display_name="Libyana Mobile")  # not checked yet

    page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "op-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#monitoring-dashboard")

    dashboard = page.locator("#monitoring-dashboard")
    assert dashboard.locator("h2").inner_text() == "Integrations health"
    rows = {name: page.locator(f'tr[data-provider="{name}"]') for name in ("moamalat", "amyal", "almadar", "libyana")}
    assert rows["moamalat"].locator(".mon-status").inner_text() == "Healthy"
    assert rows["amyal"].locator(".mon-status").inner_text() == "Degraded"
    assert rows["almadar"].locator(".mon-status").inner_text() == "Unhealthy"
    assert rows["libyana"].locator(".mon-status").inner_text() == "Not checked yet"
    # the colours a person sees
    colour = rows["almadar"].locator(".mon-dot").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(207, 34, 46)"
    assert rows["moamalat"].locator(".mon-dot").evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(26, 127, 55)"
    )
    incidents = page.locator(".mon-incidents")
    assert "Open incidents (1)" in incidents.inner_text()
    assert "Almadar Aljadid" in incidents.inner_text()
    assert page.locator(".mon-summary [data-count=unhealthy] strong").inner_text() == "1"
    assert rows["moamalat"].locator("svg.spark polyline").count() == 1
    assert "Almadar Aljadid" in page.locator(".mon-changes").inner_text()
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "monitoring-dashboard-en.png"), full_page=True)

    # Switch to Arabic: the same dashboard, right to left.
    page.click('.mon-lang button[value="ar"]')
    page.wait_for_selector("#monitoring-dashboard")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("#monitoring-dashboard h2").inner_text() == "صحة التكاملات"
    assert rows["almadar"].locator(".mon-status").inner_text() == "متوقفة"
    assert "الحوادث المفتوحة" in page.locator(".mon-incidents").inner_text()
    page.screenshot(path=str(OUTPUT / "monitoring-dashboard-ar.png"), full_page=True)
    assert os.path.getsize(OUTPUT / "monitoring-dashboard-ar.png") > 10_000
