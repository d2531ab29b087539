"""The back office's lists fit a 1,400 px screen: every changelist, with rows holding the longest
values the hub writes (URLs, panel ids, error texts, owner names), in English and in Arabic, is
no wider than the window (headless Chromium, like tests/monitoring/test_browser.py)."""

import shutil
import uuid
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from integrations.models import ExternalIntegration, IntegrationLog, Kind, StateTransition, WebhookEvent
from monitoring.models import HealthCheck, Incident, StatusChange
from smm.models import SMMOrder, SMMProvider, SMMRefill, SMMService

from ..monitoring.test_browser import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium` "
        "to run the admin's browser tests",
    ),
]

WIDTH = 1400
LONG_URL = "https://api.moamalat.ly/api/v2/payments/transactions/" + "a1b2c3d4e5" * 14 + "?page=1&limit=100"
LONG_ID = "EVT-" + "9f8e7d6c5b4a" * 6
LONG_ERROR = "The panel answered with an HTML page (Cloudflare: 522 Connection timed out) " * 3
LONG_NAME = "Just-Another-Panel-Premium-Reseller-Account"  # no spaces: a cell cannot wrap it


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()
    # No ending of the live server's idle sessions here: the live server lives for the whole run and
    # later browser tests reuse its connection (the root conftest ends stray sessions at the end).


@pytest.fixture
def rows(django_user_model):
    owner = django_user_model.objects.create_user("merchant-with-a-rather-long-user-name", "m@example.ly", "pw-123")
    integration = ExternalIntegration.objects.create(
        kind=Kind.SMM, code="panel_v2", name="jap-premium", display_name=LONG_NAME, owner=owner,
        base_url=LONG_URL, credentials={"api_key": "k-1234567890"}, total_requests=123456789,
        successful_requests=123450000, failed_requests=6789, average_response_time=Decimal("12345.67"),
        health_status="degraded", last_health_check=timezone.now(),
    )
    ExternalIntegration.objects.create(
        kind=Kind.PAYMENT, code="panel_v2", name="moamalat", display_name="Moamalat Payment Gateway (production)",
        base_url="https://api.moamalat.ly/api", health_status="healthy",
    )
    provider = SMMProvider.objects.create(integration=integration, balance=Decimal("123456.78901"), currency="USD",
                                          services_count=5000, total_spent=Decimal("9876543.21000"),
                                          completed_orders=987654, last_sync_at=timezone.now())
    service = SMMService.objects.create(
        provider=provider, service_id="123456", name="Instagram Followers [Real - Max 100K] [Refill: 30 Days] " * 2,
        type="Custom Comments Package", category="Instagram Followers [Guaranteed] [Non-drop] [Best Quality]",
        rate=Decimal("123.4567"), min_quantity=100, max_quantity=10_000_000, last_seen_at=timezone.now(),
    )
    order = SMMOrder.objects.create(
        owner=owner, provider=provider, service=service, link=LONG_URL, quantity=10_000_000, status="in_progress",
        external_order_id="9" * 40, charge=Decimal("123456.78901"), remains=9_999_999, currency="USD",
        idempotency_key=LONG_ID, error=LONG_ERROR,
    )
    SMMRefill.objects.create(order=order, external_refill_id="8" * 40, status="failed", error=LONG_ERROR)
    now = timezone.now()
    IntegrationLog.objects.insert_many([
        IntegrationLog(id=uuid.uuid4(), integration=integration, request_id=LONG_ID, operation="multi_status_refill",
                       endpoint=LONG_URL, method="POST", response_status=504, request_duration=Decimal("30001.123"),
                       started_at=now, completed_at=now, status="timeout", error_message=LONG_ERROR,
                       error_code="http_504")
    ])
    WebhookEvent.objects.create(integration=integration, kind="payment", code="moamalat-production-gateway",
                                event_id=LONG_ID, state="failed", error=LONG_ERROR, attempts=12)
    StateTransition.objects.create(
        content_type=ContentType.objects.get_for_model(SMMOrder), object_id=str(uuid.uuid4()), field="status",
        from_state="submitting", to_state="in_progress", reason=LONG_ERROR, actor=owner,
    )
    HealthCheck.objects.create(integration=integration, status="error", response_time=30001.12, error=LONG_ERROR)
    StatusChange.objects.create(integration=integration, old_status="healthy", new_status="unhealthy",
                                error=LONG_ERROR)
    Incident.objects.create(integration=integration, severity="critical", description=LONG_ERROR)


def changelists():
    """Every model the admin lists, by its changelist's URL name."""
    return sorted(
        f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist" for model in admin.site._registry
    )


@pytest.mark.django_db(transaction=True)
def test_no_changelist_is_wider_than_1400_px(browser, live_server, rows, django_user_model):
    django_user_model.objects.create_superuser("operator", "op@eishro.ly", "op-pass-123")
    names = changelists()
    assert {"admin:integrations_integrationlog_changelist", "admin:smm_smmorder_changelist",
            "admin:integrations_webhookevent_changelist", "admin:integrations_statetransition_changelist",
            "admin:integrations_externalintegration_changelist", "admin:smm_smmprovider_changelist"} <= set(names)
    too_wide = []
    for language in ("en", "ar"):
        page = browser.new_page(locale=language, viewport={"width": WIDTH, "height": 900},
                                extra_http_headers={"Accept-Language": language})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "op-pass-123")
        page.click("input[type=submit]")
        page.wait_for_selector("#content")
        for name in names:
            page.goto(f"{live_server.url}{reverse(name)}")
            assert page.locator("#changelist").count() == 1, (language, name)
            # Django lets the results table scroll inside its own box: that is an overflow too.
            width, table, box = page.evaluate(
                "() => { const r = document.querySelector('#changelist .results');"
                " return [document.documentElement.scrollWidth, r ? r.scrollWidth : 0, r ? r.clientWidth : 0]; }"
            )
            if width > WIDTH or table > box:
                too_wide.append((language, name, width, table, box))
        page.close()
    assert too_wide == []
