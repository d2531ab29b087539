"""Choosing an alternative provider (the seed's fallback table), a service of the core."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from integrations.models import ExternalIntegration, Fallback, Health, Kind, Status
from integrations.selection import (
    SEED_TABLE,
    alternatives_for,
    configured_alternatives,
    install_seed_table,
    is_usable,
)

pytestmark = pytest.mark.django_db


def register(code, **extra):
    return ExternalIntegration.objects.create(
        kind=Kind.PAYMENT, code=code, name=code.replace("_", "-"), display_name=code, base_url="http://127.0.0.1:9/",
        **extra,
    )


def table():
    rows = {}
    for row in Fallback.objects.order_by("code", "position"):
        rows.setdefault(row.code, []).append((row.alternative, row.enabled))
    return rows


def test_the_migration_installed_the_seeds_table():
    # Nothing seeded here: the test database was migrated, and migration 0004 installs the rows.
    assert table() == {
        "almadar": [("libyana", True), ("manual_verification", True)],
        "amyal": [("darbsail", True), ("vanex", True)],
        "moamalat": [("cash_on_delivery", True), ("bank_transfer", True)],
    }
    assert {code: tuple(alt for alt, _ in alts) for code, alts in table().items()} == SEED_TABLE


def test_a_code_with_no_registry_row_is_a_method_of_ours_and_always_usable():
    assert alternatives_for("moamalat") == ["cash_on_delivery", "bank_transfer"]
    assert alternatives_for("no-such-provider") == []


def test_an_alternative_whose_registry_row_is_unhealthy_is_skipped():
    cod = register("cash_on_delivery", health_status=Health.HEALTHY)
    register("bank_transfer", health_status=Health.DEGRADED)
    assert alternatives_for("moamalat") == ["cash_on_delivery", "bank_transfer"]
    ExternalIntegration.objects.filter(pk=cod.pk).update(health_status=Health.UNHEALTHY)
    assert alternatives_for("moamalat") == ["bank_transfer"]
    assert configured_alternatives("moamalat") == ["cash_on_delivery", "bank_transfer"]  # the table is unchanged


def test_an_alternative_that_is_not_active_is_skipped():
    register("vanex", status=Status.MAINTENANCE)
    assert alternatives_for("amyal") == ["darbsail"]
    assert not is_usable("vanex") and is_usable("darbsail")


def test_an_alternative_is_usable_while_one_of_its_connections_is(django_user_model):
    register("darbsail", health_status=Health.UNHEALTHY)
    assert alternatives_for("amyal") == ["vanex"]
    merchant = django_user_model.objects.create_user("shop")
    register("darbsail", owner=merchant, health_status=Health.HEALTHY)
    assert alternatives_for("amyal") == ["darbsail", "vanex"]


def test_operators_order_and_disable_alternatives():
    Fallback.objects.filter(code="amyal", alternative="vanex").update(position=0)
    Fallback.objects.filter(code="almadar", alternative="libyana").update(enabled=False)
    assert alternatives_for("amyal") == ["vanex", "darbsail"]
    assert alternatives_for("almadar") == ["manual_verification"]


def test_installing_the_seed_table_again_leaves_operators_edits_alone():
    Fallback.objects.filter(code="amyal", alternative="vanex").delete()
    Fallback.objects.filter(code="almadar").update(enabled=False)
    assert install_seed_table() == 0
    assert configured_alternatives("amyal") == ["darbsail"]
    assert configured_alternatives("almadar") == []
    Fallback.objects.filter(code="moamalat").delete()
    assert install_seed_table() == 2  # a code with no row at all gets the seed's
    assert configured_alternatives("moamalat") == ["cash_on_delivery", "bank_transfer"]


def permission(codename):
    return Permission.objects.get(content_type__app_label="integrations", codename=codename)


def test_the_table_is_edited_in_the_cores_admin_under_model_permissions(django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/integrations/fallback/").status_code == 403
    user.user_permissions.add(permission("view_fallback"))
    response = client.get("/admin/integrations/fallback/")
    assert response.status_code == 200
    assert "cash_on_delivery" in response.content.decode()
    row = Fallback.objects.get(code="amyal", alternative="vanex")
    assert client.post(f"/admin/integrations/fallback/{row.pk}/change/", {}).status_code == 403
    user.user_permissions.add(permission("change_fallback"))
    data = {"code": "amyal", "alternative": "vanex", "position": 5}  # enabled unticked
    assert client.post(f"/admin/integrations/fallback/{row.pk}/change/", data).status_code == 302
    row.refresh_from_db()
    assert (row.position, row.enabled) == (5, False)
