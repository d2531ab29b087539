"""Fallbacks: what domain services read to skip a provider that is down.

The table (`Fallback` rows, editable in the admin) is the seed's:
moamalat → cash_on_delivery, bank_transfer; amyal → darbsail, vanex; almadar → libyana,
manual_verification. When a provider becomes unhealthy a `FallbackActivation` row is written (the
log of every activation) and stays active until the provider answers again.

Domain services ask:
  * `is_available(code)`       — False while a fallback is active for that provider code;
  * `alternatives_for(code)`   — its enabled alternatives, in order, without those that are
                                 themselves down;
  * `active_fallbacks()`       — {code: [alternatives]} of everything currently switched.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Fallback, FallbackActivation

SEED_TABLE = {
    "moamalat": ["cash_on_delivery", "bank_transfer"],
    "amyal": ["darbsail", "vanex"],
    "almadar": ["libyana", "manual_verification"],
}


def seed_defaults():
    """Create the seed's fallback rows that are missing; leaves operators' edits alone."""
    created = 0
    for code, alternatives in SEED_TABLE.items():
        for position, alternative in enumerate(alternatives, start=1):
            _, new = Fallback.objects.get_or_create(code=code, alternative=alternative, defaults={"position": position})
            created += new
    return created


def configured_alternatives(code):
    return list(
        Fallback.objects.filter(code=code, enabled=True)
        .order_by("position", "alternative")
        .values_list("alternative", flat=True)
    )


def _down_codes():
    return set(FallbackActivation.objects.filter(deactivated_at=None).values_list("code", flat=True))


def is_available(code):
    return not FallbackActivation.objects.filter(code=code, deactivated_at=None).exists()


def alternatives_for(code):
    down = _down_codes()
    return [alt for alt in configured_alternatives(code) if alt not in down]


def active_fallbacks():
    return {
        a.code: a.alternatives for a in FallbackActivation.objects.filter(deactivated_at=None).order_by("activated_at")
    }


def activate(integration, reason=""):
    """Switch `integration` to its fallbacks; returns the new activation, or None if already active."""
    try:
        with transaction.atomic():
            return FallbackActivation.objects.create(
                integration=integration,
                code=integration.code,
                alternatives=configured_alternatives(integration.code),
                reason=reason,
            )
    except IntegrityError:
        return None  # already active (one active activation per provider)


def deactivate(integration):
    return FallbackActivation.objects.filter(integration=integration, deactivated_at=None).update(
        deactivated_at=timezone.now()
    )
