"""Choosing an alternative provider: which codes to use instead of one that is down.

The table is the seed's (`activateFallbackMechanisms`), kept as `Fallback` rows that a migration
installs and operators edit in the admin:

    moamalat -> cash_on_delivery, bank_transfer
    amyal    -> darbsail, vanex
    almadar  -> libyana, manual_verification

Whether an alternative can be used is read from the provider registry: a code with registry rows is
usable while one of them is active and not unhealthy; a code with none (cash on delivery, manual
verification) is a method of ours and always usable. Domain services ask here, never monitoring.
"""

from .models import ExternalIntegration, Fallback, Health, Status

SEED_TABLE = {
    "moamalat": ("cash_on_delivery", "bank_transfer"),
    "amyal": ("darbsail", "vanex"),
    "almadar": ("libyana", "manual_verification"),
}


def install_seed_table():
    """Create the seed's rows for each provider code that has none; a code an operator has already
    configured is left as it is. Returns the number of rows created. Migration 0004 installs the
    same rows on every database; the demo data calls this too (a no-op there, then)."""
    created = 0
    for code, alternatives in SEED_TABLE.items():
        if Fallback.objects.filter(code=code).exists():
            continue
        Fallback.objects.bulk_create(
            [Fallback(code=code, alternative=alt, position=pos) for pos, alt in enumerate(alternatives, start=1)]
        )
        created += len(alternatives)
    return created


def configured_alternatives(code):
    """The enabled alternatives of `code`, in the table's order, whatever their health."""
    return list(
        Fallback.objects.filter(code=code, enabled=True)
        .order_by("position", "alternative")
        .values_list("alternative", flat=True)
    )


def usable_codes(codes):
    """The subset of `codes` that can be used now, judged by the registry (see the module's note)."""
    codes = set(codes)
    registered, usable = set(), set()
    rows = ExternalIntegration.objects.filter(code__in=codes).values_list("code", "status", "health_status")
    for code, status, health in rows:
        registered.add(code)
        if status == Status.ACTIVE and health != Health.UNHEALTHY:
            usable.add(code)
    return usable | (codes - registered)


def is_usable(code):
    return code in usable_codes([code])


def alternatives_for(code):
    """Which codes to use instead of `code`: its enabled alternatives, in order, without those that
    are themselves unusable."""
    alternatives = configured_alternatives(code)
    usable = usable_codes(alternatives)
    return [alt for alt in alternatives if alt in usable]
