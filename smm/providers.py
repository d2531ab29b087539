"""SMM providers: a merchant's panels (create, edit, switch on or off, the seed's default panels),
and the figures kept on them (balance, order statistics).

Each panel is a registry row (`ExternalIntegration`, kind SMM) with the panel's own state beside it
in `SMMProvider`.
"""

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from integrations.models import ExternalIntegration, Kind, Status

from .models import OPEN_STATES, OrderStatus, SMMOrder, SMMProvider

logger = logging.getLogger("smm")
S = OrderStatus

# The seed's three default panels: code -> (name, display name, API URL).
DEFAULT_PROVIDERS = {
    "jap": ("justanotherpanel", "Just Another Panel", "https://justanotherpanel.com/api/v2"),
    "smmkings": ("smmkings", "SMM Kings", "https://smmkings.com/api/v2"),
    "secsers": ("secsers", "Secsers", "https://secsers.com/api/v2"),
}
SMM_CODES = ("jap", "smmkings", "secsers", "panel_v2")


def default_code_for(name):
    for code, (default_name, _display, _url) in DEFAULT_PROVIDERS.items():
        if name in (code, default_name):
            return code
    return "panel_v2"


@transaction.atomic
def create_provider(
    *, owner, name, display_name, api_url, api_key, priority=1, code=None, is_active=True,
    low_balance_threshold=None, created_by=None,
):
    integration = ExternalIntegration.objects.create(
        kind=Kind.SMM,
        code=code or default_code_for(name),
        name=name,
        display_name=display_name or name,
        owner=owner,
        base_url=api_url,
        credentials={"api_key": api_key},
        priority=priority,
        status=Status.ACTIVE if is_active else Status.INACTIVE,
        created_by=created_by or owner,
    )
    provider = SMMProvider(integration=integration)
    if low_balance_threshold is not None:
        provider.low_balance_threshold = low_balance_threshold
    provider.save()
    return provider


@transaction.atomic
def update_provider(provider, **fields):
    integration = provider.integration
    mapping = {"name": "name", "display_name": "display_name", "api_url": "base_url", "priority": "priority"}
    for key, attr in mapping.items():
        if fields.get(key) is not None:
            setattr(integration, attr, fields[key])
    if fields.get("api_key"):
        integration.credentials = {**(integration.credentials or {}), "api_key": fields["api_key"]}
    if fields.get("code"):
        integration.code = fields["code"]
    if fields.get("is_active") is not None:
        integration.status = Status.ACTIVE if fields["is_active"] else Status.INACTIVE
    integration.save()
    if fields.get("low_balance_threshold") is not None:
        provider.low_balance_threshold = fields["low_balance_threshold"]
        provider.low_balance = provider.balance is not None and provider.balance < provider.low_balance_threshold
        provider.save(update_fields=["low_balance_threshold", "low_balance", "updated_at"])
    return provider


def toggle_provider(provider):
    """Active <-> inactive (an `error`/`maintenance` provider is switched on)."""
    integration = provider.integration
    integration.set_status(Status.INACTIVE if integration.status == Status.ACTIVE else Status.ACTIVE)
    return provider


def initialize_default_providers(user, keys, base_urls=None):
    """The seed's `initializeDefaultProviders(userId, keys)`: create (or re-key) the default panels.

    `keys` maps a panel (its code `jap`, or the seed's name `justanotherpanel`) to an API key;
    panels without a key are skipped. Running it again with the same keys changes nothing."""
    providers = []
    for code, (name, display, url) in DEFAULT_PROVIDERS.items():
        key = keys.get(code) or keys.get(name)
        if not key:
            continue
        url = (base_urls or {}).get(code, url)
        existing = SMMProvider.objects.select_related("integration").filter(
            integration__owner=user, integration__name=name
        ).first()
        if existing is None:
            providers.append(create_provider(owner=user, name=name, display_name=display, api_url=url,
                                             api_key=key, code=code))
            continue
        integration = existing.integration
        if (integration.credentials or {}).get("api_key") != key or integration.base_url != url:
            update_provider(existing, api_key=key, api_url=url)
        providers.append(existing)
    return providers


def refresh_balance(provider):
    amount, currency = provider.adapter.balance()
    low = amount < provider.low_balance_threshold
    if low and not provider.low_balance:
        logger.warning("SMM provider %s (%s) balance is low: %s %s (threshold %s)", provider, provider.pk,
                       amount, currency, provider.low_balance_threshold)
    now = timezone.now()
    SMMProvider.objects.filter(pk=provider.pk).update(
        balance=amount, currency=currency, low_balance=low, balance_checked_at=now, updated_at=now
    )
    provider.balance, provider.currency, provider.low_balance, provider.balance_checked_at = amount, currency, low, now
    return amount, currency


def refresh_stats(provider):
    """The seed's statistics, recomputed from the orders in one query."""
    agg = SMMOrder.objects.filter(provider=provider).exclude(status__in=[S.CREATED, S.SUBMITTING]).aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(status=S.COMPLETED)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        spent=Sum("charge", filter=Q(status__in=[S.COMPLETED, S.PARTIAL, *OPEN_STATES])),
    )
    values = dict(total_orders=agg["total"], completed_orders=agg["completed"], failed_orders=agg["failed"],
                  total_spent=agg["spent"] or Decimal("0"))
    SMMProvider.objects.filter(pk=provider.pk).update(**values)
    for name, value in values.items():
        setattr(provider, name, value)
    return values
