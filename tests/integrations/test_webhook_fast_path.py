"""The receiver's and the worker's fast paths (issue 13 item 12): the provider row read once per
process and never trusted stale for long, one INSERT per notification, a stale body hash released
only when the INSERT is refused, and claim, handler and end in one transaction."""

import json
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations import webhooks
from integrations.models import ExternalIntegration, WebhookEvent
from integrations.webhooks import signed_headers
from tests.integrations.fakes import EchoAdapter

SECRET = "whsec_TOPSECRET99"
NEW_SECRET = "whsec_ROTATED_42"


class WriteThenFailAdapter(EchoAdapter):
    """Echo's handler, which writes its marker, then fails when the payload asks it to."""

    def handle_webhook(self, event):
        super().handle_webhook(event)
        if event.payload.get("fail_after_write"):
            raise ValueError("failed after writing")


@pytest.fixture(autouse=True)
def writer_adapter():
    config = apps.get_app_config("integrations")
    before = config.adapters
    config.adapters = {**before, "writer": f"{__name__}.WriteThenFailAdapter"}
    yield
    config.adapters = before


@pytest.fixture
def provider(make_provider):
    return make_provider()


def post(payload, secret=SECRET, code="echo", **kw):
    body = json.dumps(payload)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers(secret, body, **kw).items()}
    url = reverse("webhook", kwargs={"kind": "analytics", "code": code})
    return Client().post(url, data=body, content_type="application/json", **extra)


def statements(queries, verb, table=None):
    return [q["sql"] for q in queries
            if q["sql"].lstrip().upper().startswith(verb) and (table is None or table in q["sql"])]


def rotate_elsewhere(row, secret):
    """Change the row's secret as another process would: no signal reaches this one."""
    ExternalIntegration.objects.filter(pk=row.pk).update(credentials={**row.credentials, "webhook_secret": secret})


def test_a_notification_to_a_known_row_costs_one_insert_and_no_other_statement(provider):
    assert post({"id": "warm"}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert post({"id": "second"}).json() == {"status": "accepted"}
    assert not statements(queries.captured_queries, "SELECT")
    assert not statements(queries.captured_queries, "UPDATE")
    assert len(statements(queries.captured_queries, "INSERT")) == 1
    assert WebhookEvent.objects.filter(event_id="second", state=WebhookEvent.State.RECEIVED).exists()


def test_a_replay_costs_no_update_when_no_old_row_guards_the_body(provider):
    assert post({"id": "once"}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        answer = post({"id": "once"})
    assert answer.json() == {"status": "duplicate"}
    # The refused INSERT, then the question whether an old row's hash can be released: nothing else.
    assert len(statements(queries.captured_queries, "INSERT")) == 1
    assert len(statements(queries.captured_queries, "UPDATE", "webhookevent")) == 1
    assert WebhookEvent.objects.filter(event_id="once").count() == 1


def test_the_same_body_after_the_window_is_stored_again_and_only_once(provider, settings):
    body = {"type": "ping"}
    assert post(body, event_id="first").status_code == 200
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_TOLERANCE_SECONDS + 5))
    # The same bytes under a new signed id: the old row gives up the body's hash, the copy is new.
    assert post(body, event_id="second").json() == {"status": "accepted"}
    # Now the new row guards the body for the window.
    assert post(body, event_id="third").json() == {"status": "duplicate"}
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["first", "second"]
    assert list(WebhookEvent.objects.filter(body_hash__isnull=False).values_list("event_id", flat=True)) == ["second"]


def test_a_secret_rotated_by_another_process_is_honoured_at_once(provider):
    assert post({"id": "before"}).status_code == 200  # the row is now cached with the old secret
    rotate_elsewhere(provider, NEW_SECRET)
    # The cached row refuses the new signature; the fresh read accepts it.
    assert post({"id": "after"}, secret=NEW_SECRET).json() == {"status": "accepted"}
    assert WebhookEvent.objects.filter(event_id="after", state=WebhookEvent.State.RECEIVED).exists()


def test_the_old_secret_is_refused_once_the_cache_time_has_passed(provider, monkeypatch):
    assert post({"id": "before"}).status_code == 200
    rotate_elsewhere(provider, NEW_SECRET)
    clock = time.monotonic()
    monkeypatch.setattr(webhooks.time, "monotonic", lambda: clock + webhooks.ROW_CACHE_SECONDS + 0.1)
    assert post({"id": "stale"}).status_code == 401
    assert not WebhookEvent.objects.filter(event_id="stale").exclude(state=WebhookEvent.State.REJECTED).exists()


def test_a_row_saved_here_is_forgotten_at_once(provider):
    assert post({"id": "before"}).status_code == 200
    provider.credentials = {**provider.credentials, "webhook_secret": NEW_SECRET}
    provider.save()
    assert post({"id": "old-key"}).status_code == 401
    assert post({"id": "new-key"}, secret=NEW_SECRET).status_code == 200


def test_a_deleted_row_is_forgotten_at_once(provider):
    assert post({"id": "before"}).status_code == 200
    provider.delete()
    assert post({"id": "after"}).status_code == 404
    assert not WebhookEvent.objects.exists()


def test_forgeries_buy_at_most_one_fresh_read_a_second(provider):
    assert post({"id": "warm"}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        for n in range(5):
            assert post({"id": f"forged-{n}"}, secret="whsec_GUESSED").status_code == 401
    assert len(statements(queries.captured_queries, "SELECT", "external_integrations")) == 1


def test_a_failed_handler_keeps_none_of_its_writes_and_the_event_is_failed(make_provider,
                                                                             django_capture_on_commit_callbacks):
    writer = make_provider(code="writer", name="writer")
    with django_capture_on_commit_callbacks(execute=True):
        assert post({"id": "boom", "fail_after_write": True}, code="writer").status_code == 200
    event = WebhookEvent.objects.get(event_id="boom")
    assert (event.state, event.attempts) == (WebhookEvent.State.FAILED, 1)
    assert "failed after writing" in event.error and event.processed_at is not None
    writer.refresh_from_db()
    # The handler wrote its marker before failing: rolled back with the claim.
    assert "boom" not in (writer.configuration or {}).get("seen_events", [])
    # Replayed, it is claimed again (the failure left it claimable) and counted as a second attempt.
    event.raw_body = json.dumps({"id": "boom"})
    event.save(update_fields=["raw_body"])
    assert webhooks.process(WebhookEvent.objects.get(pk=event.pk)) is True
    event.refresh_from_db()
    assert (event.state, event.attempts, event.error) == (WebhookEvent.State.PROCESSED, 2, "")
    writer.refresh_from_db()
    assert writer.configuration["seen_events"] == ["boom"]


def test_a_processed_event_is_never_processed_again(provider):
    event = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="e1", body="{}",
                                        raw_body=json.dumps({"id": "e1"}), content_type="application/json")
    assert webhooks.process(event) is True
    assert webhooks.process(WebhookEvent.objects.get(pk=event.pk)) is False
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 1)
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["e1"]
