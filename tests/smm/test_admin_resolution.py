"""Operators resolve orders under review with the core's admin actions (integrations.admin
.ExternalWriteAdminMixin): through the state machine, the operator as the move's actor, and only
with the permission to change orders."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import ERROR, get_messages
from django.test import Client

from integrations.models import StateTransition
from smm.models import SMMOrder, SMMService

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/smm/smmorder/"


@pytest.fixture
def unknown_orders(make_provider, merchant):
    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                                        min_quantity=10, max_quantity=1000)
    return [SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                    quantity=100, status="unknown", error="Timed out") for _ in range(2)]


def operator(django_user_model, username, *codenames):
    user = django_user_model.objects.create_user(username, f"{username}@example.ly", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="smm", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return user, client


def test_resolve_as_failed_records_the_operator(django_user_model, unknown_orders):
    user, client = operator(django_user_model, "ops-change", "view_smmorder", "change_smmorder")
    first, second = unknown_orders
    r = client.post(CHANGELIST, {"action": "resolve_as_failed", "_selected_action": [first.pk]})
    assert r.status_code == 302
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.completed_at is not None, second.status) == ("failed", True, "unknown")
    (move,) = StateTransition.objects.of(first).filter(to_state="failed")
    assert (move.from_state, move.actor) == ("unknown", user)


def test_resolve_as_sent_asks_each_orders_panel_id(django_user_model, unknown_orders):
    user, client = operator(django_user_model, "ops-change", "view_smmorder", "change_smmorder")
    first, second = unknown_orders
    selected = {"action": "resolve_as_sent", "_selected_action": [first.pk, second.pk]}
    page = client.post(CHANGELIST, selected)
    assert page.status_code == 200
    assert f'name="reference_{first.pk}"'.encode() in page.content
    r = client.post(CHANGELIST, {**selected, "apply": "1", f"reference_{first.pk}": " 4242 ",
                                 f"reference_{second.pk}": ""})
    assert r.status_code == 302
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.external_order_id, first.error) == ("pending", "4242", "")
    assert second.status == "unknown"  # left empty: not changed
    assert StateTransition.objects.of(first).get(to_state="pending").actor == user
    # The same panel id for another order is refused, with a message.
    r = client.post(CHANGELIST, {"action": "resolve_as_sent", "_selected_action": [second.pk], "apply": "1",
                                 f"reference_{second.pk}": "4242"}, follow=True)
    second.refresh_from_db()
    assert second.status == "unknown"
    assert any(m.level == ERROR for m in get_messages(r.wsgi_request))


@pytest.mark.parametrize("action", ["resolve_as_failed", "resolve_as_sent"])
def test_a_view_only_operator_gets_an_error_and_nothing_changes(django_user_model, unknown_orders, action):
    _user, client = operator(django_user_model, "ops-view", "view_smmorder")
    first, _second = unknown_orders
    assert client.get(CHANGELIST).status_code == 200
    r = client.post(CHANGELIST, {"action": action, "_selected_action": [first.pk], "apply": "1",
                                 f"reference_{first.pk}": "4242"}, follow=True)
    assert r.status_code == 200
    messages = list(get_messages(r.wsgi_request))
    assert [m.level for m in messages] == [ERROR]
    first.refresh_from_db()
    assert (first.status, first.external_order_id) == ("unknown", "")
    assert not StateTransition.objects.of(first).exists()
