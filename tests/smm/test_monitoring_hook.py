"""The SMM app tells monitoring which merchants a panel outage affects."""

from django.apps import apps

from monitoring.alerts import affected_owners
from smm.models import SMMOrder

from .test_services import _order


def test_merchants_with_unfinished_orders_are_affected_and_others_are_not(sandbox_provider, merchant, other_merchant):
    provider = sandbox_provider("jap")
    hook = apps.get_app_config("smm").affected_owners
    assert list(hook(provider.integration)) == []

    order, _created = _order(provider, merchant)
    assert [u.pk for u in affected_owners(provider.integration)] == [merchant.pk]

    # A finished order no longer ties the merchant to the panel.
    SMMOrder.objects.filter(pk=order.pk).update(status=SMMOrder.Status.COMPLETED)
    assert list(hook(provider.integration)) == []

    # An order whose fate is unknown still counts: the merchant is waiting on it.
    SMMOrder.objects.filter(pk=order.pk).update(status=SMMOrder.Status.UNKNOWN)
    assert [u.pk for u in hook(provider.integration)] == [merchant.pk]
    assert other_merchant.pk not in [u.pk for u in hook(provider.integration)]
