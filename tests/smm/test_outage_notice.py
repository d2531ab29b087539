"""Issue 12 (1): a panel outage notice reaches every merchant with an unfinished order on that panel,
whatever else they have finished, here or elsewhere."""

import pytest
from django.utils import timezone

from integrations.models import Health
from monitoring import alerts
from monitoring.models import Notification, StatusChange
from smm.models import SMMOrder, SMMService

pytestmark = pytest.mark.django_db


def _orders(provider, owner, *statuses):
    service = SMMService.objects.get_or_create(
        provider=provider, service_id="1", defaults={"name": "IG", "type": "Default", "rate": "1",
                                                     "min_quantity": 10, "max_quantity": 1000},
    )[0]
    for n, status in enumerate(statuses):
        SMMOrder.objects.create(owner=owner, provider=provider, service=service, link="https://x.ly", quantity=100,
                                status=status, external_order_id=f"{provider.pk}-{n}")


def test_a_merchant_with_a_finished_order_is_told_when_the_panel_holding_their_open_orders_goes_down(
    make_provider, merchant, other_merchant, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    failing = make_provider(name="failing")
    _orders(failing, merchant, "pending", "in_progress", "completed")
    # The other merchant's open orders are on another panel; a finished order on the failing one
    # does not make them affected either.
    elsewhere = make_provider(owner=other_merchant, name="elsewhere")
    _orders(elsewhere, other_merchant, "pending", "processing")
    _orders(failing, other_merchant, "completed")

    StatusChange.objects.create(integration=failing.integration, old_status=Health.HEALTHY,
                                new_status=Health.UNHEALTHY, error="down", created_at=timezone.now())
    assert alerts.process_changes() == 1

    assert list(Notification.objects.values_list("user_id", flat=True)) == [merchant.pk]
    assert [u.pk for u in alerts.affected_owners(elsewhere.integration)] == [other_merchant.pk]
