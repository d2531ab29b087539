"""The checkout page in a real browser (headless Chromium, Debian's package, driven by Playwright): our
script configures the simulator's Lightbox under the page's CSP, the buyer approves in its window,
the notification settles the payment and the page says so. No CSP violation on the way."""

import shutil

import pytest
from playwright.sync_api import expect

from payments import services
from payments.interface import Method
from payments.models import Payment
from tests.conftest import wait_for
from tests.monitoring.test_browser import CHROMIUM, OUTPUT

from .moamalat_support import moamalat_row

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is missing: install it with "
                       "`apt-get update && apt-get install -y chromium` to run the checkout's browser test"),
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made meanwhile are fine.
    # The live server's sessions are left to the suite's end (tests/conftest.py): ending them here
    # would break the next test's requests on PostgreSQL.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                                    "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def gateway(live_server, reference_data):
    sandbox = f"{live_server.url}/sandbox/moamalat"
    return moamalat_row(base_url=f"{sandbox}/cube/paylink.svc/api/", lightbox_url=f"{sandbox}/js/lightbox.js")


def open_page(browser, live_server, payment):
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en"})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{live_server.url}/pay/{payment.public_id}/")
    return page, problems


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("button, state, words", [
    ("#approve", "paid", "This payment is paid"),
    ("#decline", "failed", "The payment was not approved"),
])
def test_the_buyer_pays_in_the_lightbox_and_the_page_shows_the_outcome(browser, live_server, merchant, gateway,
                                                                       button, state, words):
    payment, _ = services.create_payment(merchant, amount="42.500", currency="LYD", method=Method.CARD_CREDIT)
    page, problems = open_page(browser, live_server, payment)
    page.click("#pay")
    window = page.frame_locator("#moamalat-lightbox iframe")
    window.locator(button).click()
    expect(page.locator("#status")).to_contain_text(words, timeout=20000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"checkout-{state}.png"))
    # A decline is shown from the Lightbox's own callback; the notification settles the row just after.
    wait_for(lambda: Payment.objects.filter(pk=payment.pk, status=state).exists(), timeout=20)
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


@pytest.mark.django_db(transaction=True)
def test_closing_the_lightbox_charges_nothing(browser, live_server, merchant, gateway):
    payment, _ = services.create_payment(merchant, amount="42.500", currency="LYD", method=Method.CARD_CREDIT)
    page, problems = open_page(browser, live_server, payment)
    page.click("#pay")
    page.frame_locator("#moamalat-lightbox iframe").locator("#cancel").click()
    expect(page.locator("#status")).to_contain_text("Nothing was charged", timeout=10000)
    assert page.locator("#moamalat-lightbox").count() == 0
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    assert not problems, problems
