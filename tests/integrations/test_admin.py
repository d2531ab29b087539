"""The admin of the provider registry: credentials encrypted and masked, validation, actions, RTL."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from integrations import crypto
from integrations.models import ExternalIntegration, IntegrationLog, Status

from .test_crypto import raw_credentials

API_KEY, HOOK_SECRET = "sk_live_ABCDEF123456", "whsec_TOPSECRET99"
ADD_URL = reverse("admin:integrations_externalintegration_add")
LIST_URL = reverse("admin:integrations_externalintegration_changelist")


def change_url(obj):
    return reverse("admin:integrations_externalintegration_change", args=[obj.pk])


@pytest.fixture
def admin_client(staff, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True  # the sandbox's local URLs, as in development
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    return client


def form_data(**overrides):
    data = {
        "kind": "analytics",
        "code": "echo",
        "name": "echo-admin",
        "display_name": "Echo via admin",
        "owner": "",
        "base_url": "http://127.0.0.1:9/",
        "priority": "1",
        "status": "active",
        "configuration": "{}",
        "credentials_json": json.dumps({"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops"}),
    }
    data.update(overrides)
    return data


def errors_of(response):
    """The bound admin form's errors ({} when the form was valid and the view redirected)."""
    if response.status_code == 302:
        return {}
    assert response.status_code == 200
    return response.context["adminform"].form.errors


# --- adding a provider --------------------------------------------------------------------------------

def test_staff_add_a_provider_with_encrypted_credentials(admin_client, staff):
    response = admin_client.post(ADD_URL, form_data())
    assert response.status_code == 302, errors_of(response)
    provider = ExternalIntegration.objects.get(name="echo-admin")
    assert provider.credentials == {"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops"}
    assert (provider.code, provider.kind, provider.owner, provider.created_by) == ("echo", "analytics", None, staff)
    raw = raw_credentials(provider.pk)
    assert API_KEY not in raw and HOOK_SECRET not in raw
    assert json.loads(crypto.decrypt(raw))["api_key"] == API_KEY


def test_the_add_form_lists_the_registered_adapters(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    assert '<option value="echo">Echo test provider</option>' in html


def test_an_unknown_adapter_is_a_form_error_and_nothing_is_written(admin_client):
    response = admin_client.post(ADD_URL, form_data(code="no-such-adapter"))
    assert list(errors_of(response)) == ["code"]
    assert not ExternalIntegration.objects.exists()


def test_an_adapter_of_another_kind_is_a_form_error(admin_client):
    response = admin_client.post(ADD_URL, form_data(kind="payment"))
    assert list(errors_of(response)) == ["kind"]
    assert not ExternalIntegration.objects.exists()


@pytest.mark.parametrize("url", ["not a url", "ftp://files.example.ly/", "http://", "javascript:alert(1)"])
def test_a_malformed_url_is_a_form_error(admin_client, url):
    response = admin_client.post(ADD_URL, form_data(base_url=url))
    assert list(errors_of(response)) == ["base_url"]
    assert not ExternalIntegration.objects.exists()


def test_a_private_address_is_refused_outside_sandbox_mode(admin_client, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    response = admin_client.post(ADD_URL, form_data(base_url="http://10.1.2.3/api/"))
    assert list(errors_of(response)) == ["base_url"]
    assert not ExternalIntegration.objects.exists()


@pytest.mark.parametrize("credentials", ["{not json", "[1, 2]"])
def test_credentials_must_be_a_json_object(admin_client, credentials):
    response = admin_client.post(ADD_URL, form_data(credentials_json=credentials))
    assert list(errors_of(response)) == ["credentials_json"]
    assert not ExternalIntegration.objects.exists()


def test_missing_required_credentials_are_a_form_error_not_a_crash(admin_client):
    response = admin_client.post(ADD_URL, form_data(credentials_json=json.dumps({"username": "ops"})))
    errors = errors_of(response)
    assert list(errors) == ["credentials_json"]
    assert "api_key" in errors["credentials_json"][0] and "webhook_secret" in errors["credentials_json"][0]
    assert not ExternalIntegration.objects.exists()


# --- changing a provider: secrets masked -------------------------------------------------------------

def test_the_change_form_never_shows_a_secret_in_full(admin_client, make_provider):
    provider = make_provider(credentials={"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops-user"})
    html = admin_client.get(change_url(provider)).content.decode()
    assert API_KEY not in html and HOOK_SECRET not in html
    assert "••••••3456" in html  # the last four characters, to tell keys apart
    assert "ops-user" in html  # a value the adapter declares not secret is shown


def test_undeclared_values_are_masked_too(admin_client, make_provider):
    # A key the adapter does not know (or a row whose adapter is gone) is treated as secret.
    provider = make_provider(
        credentials={"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "legacy_pin": "9876543210"}
    )
    html = admin_client.get(change_url(provider)).content.decode()
    assert "9876543210" not in html and API_KEY not in html
    ExternalIntegration.objects.filter(pk=provider.pk).update(code="retired-adapter")
    html = admin_client.get(change_url(provider)).content.decode()
    assert API_KEY not in html and HOOK_SECRET not in html and "9876543210" not in html


def current_form(client, provider):
    """The change form's values as the browser would submit them unchanged."""
    form = client.get(change_url(provider)).context["adminform"].form
    data = form_data(
        name=provider.name, display_name=provider.display_name, base_url=provider.base_url,
        credentials_json=form.initial["credentials_json"],
    )
    return data, json.loads(form.initial["credentials_json"])


def test_saving_with_the_masked_values_keeps_the_stored_secrets(admin_client, make_provider):
    provider = make_provider()
    data, shown = current_form(admin_client, provider)
    assert shown["api_key"] != API_KEY and shown["api_key"].startswith("••")
    response = admin_client.post(change_url(provider), {**data, "display_name": "Renamed"})
    assert response.status_code == 302, errors_of(response)
    provider = ExternalIntegration.objects.get(pk=provider.pk)
    assert provider.display_name == "Renamed"
    assert provider.credentials == {"api_key": API_KEY, "webhook_secret": HOOK_SECRET, "username": "ops"}


def test_one_secret_can_be_changed_without_retyping_the_others(admin_client, make_provider):
    provider = make_provider()
    data, shown = current_form(admin_client, provider)
    shown["api_key"] = "sk_live_NEWKEY000000"
    response = admin_client.post(change_url(provider), {**data, "credentials_json": json.dumps(shown)})
    assert response.status_code == 302, errors_of(response)
    assert ExternalIntegration.objects.get(pk=provider.pk).credentials == {
        "api_key": "sk_live_NEWKEY000000", "webhook_secret": HOOK_SECRET, "username": "ops",
    }


def test_a_failed_change_writes_nothing(admin_client, make_provider):
    provider = make_provider()
    data, _ = current_form(admin_client, provider)
    response = admin_client.post(change_url(provider), {**data, "base_url": "nope", "display_name": "Renamed"})
    assert list(errors_of(response)) == ["base_url"]
    assert API_KEY not in response.content.decode()
    provider = ExternalIntegration.objects.get(pk=provider.pk)
    assert provider.display_name == "Echo" and provider.credentials["api_key"] == API_KEY


def test_the_changelist_and_search_never_show_secrets(admin_client, make_provider):
    make_provider(display_name="Findable")
    for response in (admin_client.get(LIST_URL), admin_client.get(LIST_URL, {"q": "Findable"})):
        html = response.content.decode()
        assert response.status_code == 200 and "Findable" in html
        assert API_KEY not in html and HOOK_SECRET not in html


# --- actions -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("action", "status"),
    [("disable", Status.INACTIVE), ("maintenance", Status.MAINTENANCE), ("enable", Status.ACTIVE)],
)
def test_status_actions(admin_client, make_provider, action, status):
    start = Status.INACTIVE if status == Status.ACTIVE else Status.ACTIVE
    first, second, untouched = (make_provider(status=start) for _ in range(3))
    response = admin_client.post(
        LIST_URL, {"action": action, "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert response.status_code == 200
    statuses = dict(ExternalIntegration.objects.values_list("pk", "status"))
    assert statuses == {first.pk: status, second.pk: status, untouched.pk: start}
    assert "2 providers updated." in [str(m) for m in response.context["messages"]]


# --- the log admin is read-only ------------------------------------------------------------------------

def test_the_log_admin_is_read_only(admin_client, make_provider):
    log = IntegrationLog.objects.create(integration=make_provider(), endpoint="health", method="GET",
                                        response_status=200)
    list_url = reverse("admin:integrations_integrationlog_changelist")
    change = reverse("admin:integrations_integrationlog_change", args=[log.pk])
    listing = admin_client.get(list_url)
    assert listing.status_code == 200 and "health" in listing.content.decode()
    assert admin_client.get(reverse("admin:integrations_integrationlog_add")).status_code == 403
    view = admin_client.get(change)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_client.post(change, {"endpoint": "tampered", "method": "GET"}).status_code == 403
    assert admin_client.get(reverse("admin:integrations_integrationlog_delete", args=[log.pk])).status_code == 403
    assert "delete_selected" not in listing.content.decode()
    assert IntegrationLog.objects.get(pk=log.pk).endpoint == "health"


# --- language and direction ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("accept", "lang", "direction"), [("ar", "ar", "rtl"), (None, "ar", "rtl"), ("en", "en", "ltr")]
)
def test_the_admin_index_is_arabic_and_right_to_left_by_default(staff, accept, lang, direction):
    client = Client(**({"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}))
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{lang}" dir="{direction}">' in html
    if lang == "ar":
        assert "إدارة" in html or "الموقع" in html  # Django's own Arabic admin strings are in use


# --- webhook events: replay ------------------------------------------------------------------------------

def test_replaying_failed_events_processes_them_and_reports_the_count(admin_client, make_provider):
    from integrations.models import WebhookEvent

    provider = make_provider()
    failed = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="evt-1",
                                         state=WebhookEvent.State.FAILED, body='{"id": "evt-1"}', error="boom")
    done = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="evt-2",
                                       state=WebhookEvent.State.PROCESSED, body='{"id": "evt-2"}')
    response = admin_client.post(
        reverse("admin:integrations_webhookevent_changelist"),
        {"action": "replay", "_selected_action": [failed.pk, done.pk]}, follow=True,
    )
    # Celery is eager here: the failed event was processed again (and only that one).
    assert WebhookEvent.objects.get(pk=failed.pk).state == WebhookEvent.State.PROCESSED
    assert WebhookEvent.objects.get(pk=done.pk).attempts == 0
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["evt-1"]
    assert "1 event(s) queued again." in [str(m) for m in response.context["messages"]]
