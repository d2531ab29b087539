"""The registry's admin under Django's permissions (issue 11, points 7 and 8): status actions and
webhook replay need the change permission, and a provider's URL changes with its stored credentials
only when they are entered again or the user holds integrations.change_provider_url_keep_key."""

import json

import pytest
from django.contrib.messages import ERROR, get_messages
from django.urls import reverse

from integrations.models import ExternalIntegration, Status, WebhookEvent
from tests.staff import admin_client_for, staff_with

pytestmark = pytest.mark.django_db

API_KEY, HOOK_SECRET = "sk_live_ABCDEF123456", "whsec_TOPSECRET99"
PROVIDERS = reverse("admin:integrations_externalintegration_changelist")
EVENTS = reverse("admin:integrations_webhookevent_changelist")
VIEW = "integrations.view_externalintegration"
CHANGE = "integrations.change_externalintegration"
KEEP_KEY = "integrations.change_provider_url_keep_key"


def error_messages(response):
    return [str(m) for m in get_messages(response.wsgi_request) if m.level == ERROR]


@pytest.fixture(autouse=True)
def _local_urls(settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True  # make_provider's address, as in development


# --- actions ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "start"), [("disable", Status.ACTIVE), ("maintenance", Status.ACTIVE),
                                               ("enable", Status.INACTIVE)])
def test_a_view_only_user_cannot_change_a_providers_status(make_provider, action, start):
    provider = make_provider(status=start)
    client = admin_client_for(staff_with("viewer", VIEW))
    page = client.get(PROVIDERS)
    assert page.status_code == 200 and f'value="{action}"' not in page.content.decode()
    response = client.post(PROVIDERS, {"action": action, "index": 0, "_selected_action": [provider.pk]}, follow=True)
    assert response.status_code == 200
    assert ExternalIntegration.objects.get(pk=provider.pk).status == start
    assert len(error_messages(response)) == 1


def test_a_user_with_the_change_permission_can(make_provider):
    provider = make_provider(status=Status.ACTIVE)
    client = admin_client_for(staff_with("editor", VIEW, CHANGE))
    assert 'value="disable"' in client.get(PROVIDERS).content.decode()
    response = client.post(PROVIDERS, {"action": "disable", "index": 0, "_selected_action": [provider.pk]},
                           follow=True)
    assert ExternalIntegration.objects.get(pk=provider.pk).status == Status.INACTIVE
    assert error_messages(response) == []


def failed_event(provider):
    return WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="evt-1",
                                       state=WebhookEvent.State.FAILED, body='{"id": "evt-1"}', error="boom")


def test_a_view_only_user_cannot_replay_webhooks(make_provider):
    event = failed_event(make_provider())
    client = admin_client_for(staff_with("viewer", "integrations.view_webhookevent"))
    response = client.post(EVENTS, {"action": "replay", "index": 0, "_selected_action": [event.pk]}, follow=True)
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.FAILED, 0)
    assert len(error_messages(response)) == 1


def test_replay_needs_the_change_permission_on_events(make_provider):
    event = failed_event(make_provider())
    client = admin_client_for(staff_with("editor", "integrations.view_webhookevent",
                                         "integrations.change_webhookevent"))
    client.post(EVENTS, {"action": "replay", "index": 0, "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 1)  # Celery is eager here


# --- the URL and the stored credentials ---------------------------------------------------------------------

def change_url(provider):
    return reverse("admin:integrations_externalintegration_change", args=[provider.pk])


def as_submitted(client, provider, **overrides):
    """The change form as the browser sends it back, secrets masked, with `overrides` applied."""
    form = client.get(change_url(provider)).context["adminform"].form
    data = {
        "kind": provider.kind, "code": provider.code, "name": provider.name, "display_name": provider.display_name,
        "owner": provider.owner_id or "", "base_url": provider.base_url, "priority": provider.priority,
        "status": provider.status, "configuration": json.dumps(provider.configuration),
        "credentials_json": form.initial["credentials_json"],
    }
    return {**data, **overrides}


@pytest.fixture
def provider(make_provider):
    return make_provider(base_url="http://127.0.0.1:9/",
                         credentials={"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops"})


def test_a_new_url_with_the_masked_secrets_is_refused(provider):
    client = admin_client_for(staff_with("editor", VIEW, CHANGE))
    response = client.post(change_url(provider), as_submitted(client, provider, base_url="http://127.0.0.2:9/"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["base_url"] and "enter them again" in errors["base_url"][0]
    provider.refresh_from_db()
    assert provider.base_url == "http://127.0.0.1:9/" and provider.credentials["api_key"] == API_KEY


def test_a_new_url_with_every_secret_entered_again_is_saved(provider):
    client = admin_client_for(staff_with("editor", VIEW, CHANGE))
    secrets = json.dumps({"api_key": "sk_live_NEW000000001", "webhook_secret": "whsec_NEW0000002", "username": "ops"})
    response = client.post(change_url(provider), as_submitted(client, provider, base_url="http://127.0.0.2:9/",
                                                              credentials_json=secrets))
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert (provider.base_url, provider.credentials["api_key"]) == ("http://127.0.0.2:9/", "sk_live_NEW000000001")


def test_one_secret_entered_again_is_not_enough(provider):
    client = admin_client_for(staff_with("editor", VIEW, CHANGE))
    data = as_submitted(client, provider, base_url="http://127.0.0.2:9/")
    shown = json.loads(data["credentials_json"])
    shown["api_key"] = "sk_live_NEW000000001"  # the webhook secret stays masked, so it would go along
    response = client.post(change_url(provider), {**data, "credentials_json": json.dumps(shown)})
    assert list(response.context["adminform"].form.errors) == ["base_url"]
    provider.refresh_from_db()
    assert provider.base_url == "http://127.0.0.1:9/"


def test_the_dedicated_permission_keeps_the_secrets_with_a_new_url(provider):
    client = admin_client_for(staff_with("trusted", VIEW, CHANGE, KEEP_KEY))
    response = client.post(change_url(provider), as_submitted(client, provider, base_url="http://127.0.0.2:9/"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert provider.base_url == "http://127.0.0.2:9/"
    assert provider.credentials == {"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops"}


def test_the_same_url_keeps_the_masked_secrets_without_the_permission(provider):
    client = admin_client_for(staff_with("editor", VIEW, CHANGE))
    response = client.post(change_url(provider), as_submitted(client, provider, display_name="Renamed"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert (provider.display_name, provider.credentials["api_key"]) == ("Renamed", API_KEY)
