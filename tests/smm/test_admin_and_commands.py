"""Admin screens and actions, the default-providers command and the demo data."""

import pytest
import responses
from django.core.management import call_command
from django.test import Client

from smm.models import SMMOrder, SMMProvider, SMMService

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def order(make_provider, merchant):
    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                                        min_quantity=10, max_quantity=1000, refill=True, cancel=True)
    return SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                   quantity=100, status="unknown", error="Timed out")


def test_admin_pages_render(admin_client, order):
    for url in ["/admin/smm/smmprovider/", f"/admin/smm/smmprovider/{order.provider_id}/change/",
                "/admin/smm/smmservice/?type=Default", "/admin/smm/smmorder/?status=unknown",
                f"/admin/smm/smmorder/{order.pk}/change/", "/admin/smm/smmrefill/"]:
        assert admin_client.get(url).status_code == 200, url


def test_operator_resolves_an_unknown_order_with_the_panels_id(admin_client, order):
    r = admin_client.post(f"/admin/smm/smmorder/{order.pk}/change/", {
        "resolve_order_id": "4242", "refills-TOTAL_FORMS": "0", "refills-INITIAL_FORMS": "0"})
    assert r.status_code == 302, r.content[:2000]
    order.refresh_from_db()
    assert order.status == "pending" and order.external_order_id == "4242"


def test_operator_marks_an_unknown_order_failed(admin_client, order):
    r = admin_client.post("/admin/smm/smmorder/", {"action": "resolve_as_failed", "_selected_action": [order.pk]})
    assert r.status_code == 302
    order.refresh_from_db()
    assert order.status == "failed"


@responses.activate
def test_provider_actions_sync_and_balance(admin_client, order):
    responses.post(PANEL_URL, json=[{"service": 1, "name": "IG", "rate": "2", "min": 10, "max": 100}])
    admin_client.post("/admin/smm/smmprovider/", {"action": "sync_services", "_selected_action": [order.provider_id]})
    assert SMMService.objects.get().rate == 2
    responses.replace(responses.POST, PANEL_URL, json={"balance": "3.5", "currency": "USD"})
    admin_client.post("/admin/smm/smmprovider/", {"action": "refresh_balance",
                                                  "_selected_action": [order.provider_id]})
    provider = SMMProvider.objects.get()
    assert str(provider.balance) == "3.50000" and provider.low_balance
    admin_client.post("/admin/smm/smmprovider/", {"action": "toggle", "_selected_action": [order.provider_id]})
    provider.integration.refresh_from_db()
    assert provider.integration.status == "inactive"


def test_command_creates_default_providers_once(merchant):
    call_command("initialize_default_smm_providers", merchant.username, "--jap", "k1", "--secsers", "k3")
    call_command("initialize_default_smm_providers", merchant.username, "--jap", "k1", "--secsers", "k3")
    names = sorted(SMMProvider.objects.values_list("integration__name", flat=True))
    assert names == ["justanotherpanel", "secsers"]


def test_demo_data_points_the_three_panels_at_the_simulator(settings):
    call_command("load_demo_data")
    call_command("load_demo_data")
    providers = SMMProvider.objects.select_related("integration")
    assert sorted(p.integration.code for p in providers) == ["jap", "secsers", "smmkings"]
    for p in providers:
        assert p.integration.base_url == f"{settings.SANDBOX_BASE_URL}/smm/{p.integration.code}/api/v2"
        assert p.integration.credentials == {"api_key": f"sandbox-{p.integration.code}-key"}


def test_arabic_translations_ship_with_the_app(api, make_provider):
    from django.utils import translation

    with translation.override("ar"):
        assert translation.gettext("Under review") == "قيد المراجعة"
        assert translation.gettext("SMM providers") == "مزوّدو خدمات SMM"
    provider = make_provider()
    SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                              min_quantity=10, max_quantity=1000)
    r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": "1", "link": "https://x.ly/a",
                                     "quantity": 5}, format="json", HTTP_ACCEPT_LANGUAGE="ar")
    assert r.status_code == 400
    assert r.json()["quantity"] == ["يجب أن تكون الكمية بين 10 و1000 لهذه الخدمة."]
