"""Fallback activations: the log of every switch to a provider's alternatives.

The table and the choice of alternatives are the core's (`integrations.selection`, the seed's
moamalat → cash_on_delivery, bank_transfer; amyal → darbsail, vanex; almadar → libyana,
manual_verification). Here, when a provider becomes unhealthy a `FallbackActivation` row is written
and stays active until the provider answers again.

  * `is_available(code)`       — False while a fallback is active for that provider code;
  * `alternatives_for(code)`   — the core's usable alternatives, without those whose own fallback
                                 is active;
  * `active_fallbacks()`       — {code: [alternatives]} of everything currently switched.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations import selection

from .models import FallbackActivation


def _down_codes():
    return set(FallbackActivation.objects.filter(deactivated_at=None).values_list("code", flat=True))


def is_available(code):
    return not FallbackActivation.objects.filter(code=code, deactivated_at=None).exists()


def alternatives_for(code):
    down = _down_codes()
    return [alt for alt in selection.alternatives_for(code) if alt not in down]


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
                alternatives=selection.configured_alternatives(integration.code),
                reason=reason,
            )
    except IntegrityError:
        return None  # already active (one active activation per provider)


def deactivate(integration):
    return FallbackActivation.objects.filter(integration=integration, deactivated_at=None).update(
        deactivated_at=timezone.now()
    )
