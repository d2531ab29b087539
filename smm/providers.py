"""SMM providers: a merchant's panels (create, edit, switch on or off, the seed's default panels),
and the figures kept on them (balance, order statistics).

Each panel is a registry row (`ExternalIntegration`, kind SMM) with the panel's own state beside it
in `SMMProvider`.
"""

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.models import ExternalIntegration, Kind, Status
from integrations.permissions import KEEP_CREDENTIALS_ON_URL_CHANGE

from .models import FINAL_STATES, OPEN_STATES, OrderStatus, SMMOrder, SMMProvider, SMMRefill

logger = logging.getLogger("smm")
S = OrderStatus

# The seed's three default panels: code -> (name, display name, API URL).
DEFAULT_PROVIDERS = {
    "jap": ("justanotherpanel", "Just Another Panel", "https://justanotherpanel.com/api/v2"),
    "smmkings": ("smmkings", "SMM Kings", "https://smmkings.com/api/v2"),
    "secsers": ("secsers", "Secsers", "https://secsers.com/api/v2"),
}
SMM_CODES = ("jap", "smmkings", "secsers", "panel_v2")
KEY_NEEDED_FOR_NEW_URL = _(
    "Enter the API key again to change the URL: the stored key is never sent to a new address without it."
)
NO_API_KEY_YET = _("No API key yet: set the panel's API key to activate it.")


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
def update_provider(provider, *, actor=None, **fields):
    """Change the fields given (None leaves a field as it is).

    A new `api_url` takes the stored key to the new address at the next call: it is refused unless
    the same call re-enters `api_key` or `actor` holds the permission to keep the key
    (integrations.permissions.KEEP_CREDENTIALS_ON_URL_CHANGE). Otherwise a stolen session, or
    staff allowed to edit providers, could point a merchant's panel at their own server and collect
    the merchant's key."""
    integration = provider.integration
    new_url = fields.get("api_url")
    if (
        new_url is not None
        and new_url != integration.base_url
        and not fields.get("api_key")
        and (integration.credentials or {}).get("api_key")
        and not (actor is not None and actor.has_perm(KEEP_CREDENTIALS_ON_URL_CHANGE))
    ):
        raise ValidationError({"api_url": [KEY_NEEDED_FOR_NEW_URL]})
    had_key = has_api_key(provider)
    if fields.get("is_active") and not had_key and not fields.get("api_key"):
        raise ValidationError({"is_active": [NO_API_KEY_YET]})
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
    elif not had_key and fields.get("api_key"):
        # A panel waiting for its key (create_default_panels) was inactive only for the want of it.
        integration.status = Status.ACTIVE
    integration.save()
    if fields.get("low_balance_threshold") is not None:
        provider.low_balance_threshold = fields["low_balance_threshold"]
        provider.low_balance = provider.balance is not None and provider.balance < provider.low_balance_threshold
        provider.save(update_fields=["low_balance_threshold", "low_balance", "updated_at"])
    return provider


def toggle_provider(provider):
    """Active <-> inactive (an `error`/`maintenance` provider is switched on; one without its API key
    is not)."""
    integration = provider.integration
    if integration.status != Status.ACTIVE and not has_api_key(provider):
        raise ValidationError({"is_active": [NO_API_KEY_YET]})
    integration.set_status(Status.INACTIVE if integration.status == Status.ACTIVE else Status.ACTIVE)
    return provider


def has_api_key(provider):
    return bool((provider.integration.credentials or {}).get("api_key"))


def create_default_panels(user):
    """The seed's default panels for a new merchant, "at registration" (smm.signals), before the
    merchant has their keys: each without a key and inactive (ExternalIntegration.clean accepts a
    missing credential on an inactive row only), so that no job syncs, polls, asks the balance of or
    health-checks it. Setting its key activates it (update_provider). Panels the merchant already
    has (by name) are left alone. Returns the panels created."""
    existing = set(ExternalIntegration.objects.filter(owner=user, name__in=[v[0] for v in DEFAULT_PROVIDERS.values()])
                   .values_list("name", flat=True))
    created = []
    with transaction.atomic():
        for code, (name, display, url) in DEFAULT_PROVIDERS.items():
            if name not in existing:
                created.append(create_provider(owner=user, name=name, display_name=display, api_url=url, api_key="",
                                               code=code, is_active=False))
    return created


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


def short_of_balance():
    """The orders (an SMMOrder lookup) whose panel's last known balance is below their estimated
    charge: held in the queue instead of being sent (smm.orders.OrderSubmission). An unknown balance
    or charge, or another currency, holds nothing: there is nothing to compare."""
    return Q(charge__isnull=False, provider__balance__isnull=False, provider__balance__lt=F("charge"),
             provider__currency=F("currency"))


def refresh_balance(provider):
    amount, currency = provider.adapter.balance()
    # Low also while a queued order needs more than the panel has: the operator's sign of held orders.
    low = amount < provider.low_balance_threshold or SMMOrder.objects.filter(
        provider=provider, status=S.CREATED, charge__gt=amount, currency=currency
    ).exists()
    if low and not provider.low_balance:
        logger.warning("SMM provider %s (%s) balance is low: %s %s (threshold %s)", provider, provider.pk,
                       amount, currency, provider.low_balance_threshold)
    now = timezone.now()
    SMMProvider.objects.filter(pk=provider.pk).update(
        balance=amount, currency=currency, low_balance=low, balance_checked_at=now, updated_at=now
    )
    provider.balance, provider.currency, provider.low_balance, provider.balance_checked_at = amount, currency, low, now
    return amount, currency


# What the seed's statistics count: every order that left the queue; spent is what the open,
# completed and partial ones cost.
NOT_SUBMITTED = (S.CREATED, S.SUBMITTING)
SPENDING = (S.COMPLETED, S.PARTIAL, *OPEN_STATES)
ARCHIVED = {"total_orders": "archived_orders", "completed_orders": "archived_completed_orders",
            "failed_orders": "archived_failed_orders", "total_spent": "archived_spent"}


def _figures(orders):
    agg = orders.exclude(status__in=NOT_SUBMITTED).aggregate(
        total_orders=Count("id"),
        completed_orders=Count("id", filter=Q(status=S.COMPLETED)),
        failed_orders=Count("id", filter=Q(status=S.FAILED)),
        total_spent=Sum("charge", filter=Q(status__in=SPENDING)),
    )
    agg["total_spent"] = agg["total_spent"] or Decimal("0")
    return agg


def _lock(provider_pk):
    """Take the provider's row until the transaction ends (SQLite: the IMMEDIATE transaction already
    holds the database's write lock). Returns its archived figures, or None if it is gone."""
    return (SMMProvider.objects.select_for_update().filter(pk=provider_pk)
            .values(*ARCHIVED.values()).first())


def refresh_stats(provider):
    """The seed's statistics: the provider's orders in the table (one query) plus the figures of
    those the cleanup deleted. Called after every final state of an order.

    The row is locked before the orders are counted, so concurrent refreshes run one after the
    other and each counts after the previous one committed (PostgreSQL's READ COMMITTED reads with a
    new snapshot per statement): every move is followed by a refresh that sees it, and none writes
    an older count over a newer one."""
    pk = getattr(provider, "pk", provider)
    with transaction.atomic():
        archived = _lock(pk)
        if archived is None:
            return {}
        values = {name: value + archived[ARCHIVED[name]]
                  for name, value in _figures(SMMOrder.objects.filter(provider_id=pk)).items()}
        SMMProvider.objects.filter(pk=pk).update(**values)
    if isinstance(provider, SMMProvider):
        for name, value in values.items():
            setattr(provider, name, value)
    return values


def delete_orders_keeping_stats(provider_pk, pks):
    """Delete these finished orders of one provider (and their refills), adding their figures to the
    provider's archived ones in the same transaction: the statistics stay what they were. Returns
    how many orders were deleted."""
    with transaction.atomic():
        if _lock(provider_pk) is None:
            return 0
        # Only finished orders: their figures can no longer change once archived.
        orders = SMMOrder.objects.filter(provider_id=provider_pk, pk__in=pks, status__in=FINAL_STATES)
        figures = _figures(orders)
        SMMRefill.objects.filter(order__in=orders).delete()
        _count, detail = orders.delete()
        SMMProvider.objects.filter(pk=provider_pk).update(
            **{ARCHIVED[name]: F(ARCHIVED[name]) + value for name, value in figures.items()}
        )
    return detail.get(SMMOrder._meta.label, 0)
