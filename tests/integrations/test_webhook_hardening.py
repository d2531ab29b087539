"""Issue 11, points 3, 4, 5 and the webhook part of 17: replays under a new id, storage floods,
accepted bodies kept in clear, and one test per verification guard of the webhook path (each was
checked by deleting its guard once and seeing the test named for it fail)."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import webhooks
from integrations.models import WebhookEvent
from integrations.webhooks import signed_headers
from tests.integrations.fakes import EchoAdapter

SECRET = "whsec_TOPSECRET99"
CARD = "4111111111111111"
PASSWORD = "hunter2-Correct-Horse"
TOKEN = "tok_live_9f8e7d6c5b4a"


class HookAdapter(EchoAdapter):
    """An adapter with its own verification (as Moamalat's SecureHash): `verdict` decides."""

    verdict = None

    def verify_webhook(self, request):
        return type(self).verdict


class RecordingAdapter(EchoAdapter):
    """Keeps the payloads its handler saw; fails once on demand, with the card in its message."""

    payloads = []
    fail_next = False

    def handle_webhook(self, event):
        payload = event.payload
        if RecordingAdapter.fail_next:
            RecordingAdapter.fail_next = False
            raise ValueError(f"declined card {payload.get('card_number')}")
        RecordingAdapter.payloads.append(payload)


@pytest.fixture(autouse=True)
def extra_adapters():
    config = apps.get_app_config("integrations")
    before = config.adapters
    config.adapters = {
        **before,
        "hooked": f"{__name__}.HookAdapter",
        "recorder": f"{__name__}.RecordingAdapter",
    }
    HookAdapter.verdict = None
    RecordingAdapter.payloads, RecordingAdapter.fail_next = [], False
    yield
    config.adapters = before


@pytest.fixture
def provider(make_provider):
    return make_provider()


@pytest.fixture(autouse=True)
def one_minute(monkeypatch):
    """The per-minute counters see a single minute, even when a test's calls straddle two."""
    minute = webhooks._minute()
    monkeypatch.setattr(webhooks, "_minute", lambda: minute)


def post(body, headers=None, *, kind="analytics", code="echo", provider=None, content_type="application/json",
         remote_addr="203.0.113.7"):
    url = reverse("webhook", kwargs={"kind": kind, "code": code})
    if provider is not None:
        url = reverse("webhook-for", kwargs={"kind": kind, "code": code, "integration_id": provider.pk})
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    return Client().post(url, data=body, content_type=content_type, REMOTE_ADDR=remote_addr, **extra)


def signed(payload, secret=SECRET, **kw):
    body = json.dumps(payload)
    return body, signed_headers(secret, body, **kw)


def refusal(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["code"] == code, response.json()


def seen(provider):
    provider.refresh_from_db()
    return provider.configuration.get("seen_events", [])


def stored_bytes():
    """What the rows of WebhookEvent hold, as the database returns it (every text column)."""
    with connection.cursor() as cur:
        cur.execute("SELECT headers, body, raw_body, error, event_id, kind, code FROM integrations_webhookevent")
        return sum(len(str(value or "")) for row in cur.fetchall() for value in row)


# --- 3. replay with a new event id --------------------------------------------------------------------


def test_the_signature_covers_the_event_id(provider, django_capture_on_commit_callbacks):
    body, headers = signed({"type": "ping"}, event_id="evt_a")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers).status_code == 200
        replayed = post(body, {**headers, "X-Eishro-Event-Id": "evt_b"})
    refusal(replayed, 401, "bad_signature")
    assert seen(provider) == ["evt_a"]


def test_a_signed_event_id_is_what_is_stored(provider, django_capture_on_commit_callbacks):
    body, headers = signed({"id": "from_body"}, event_id="evt_header")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers).status_code == 200
    assert seen(provider) == ["evt_header"]


@pytest.mark.parametrize("event_id", ["a.b", "x" * 201, "évt", "a b"])
def test_an_event_id_that_could_read_two_ways_is_refused(provider, event_id):
    body = '{"type": "ping"}'
    # Signed as our scheme would sign it: the id's format is refused before anything else matters.
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{timestamp}.{event_id}.{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-Eishro-Timestamp": timestamp, "X-Eishro-Signature": f"sha256={mac}",
               "X-Eishro-Event-Id": event_id}
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = Client().post("/webhooks/analytics/echo/", data=body, content_type="application/json", **extra)
    refusal(response, 400, "bad_event_id")
    assert seen(provider) == []


def test_the_same_body_under_a_new_id_within_the_window_is_a_duplicate(provider, django_capture_on_commit_callbacks):
    body = json.dumps({"type": "payment.succeeded", "amount": 125})
    with django_capture_on_commit_callbacks(execute=True):
        first = post(body, signed_headers(SECRET, body, event_id="evt_1"))
        second = post(body, signed_headers(SECRET, body, event_id="evt_2", timestamp=time.time() + 5))
    assert first.json() == {"status": "accepted"}
    assert second.status_code == 200 and second.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1
    assert seen(provider) == ["evt_1"]


def test_the_same_body_after_the_window_is_a_new_event(provider, settings, django_capture_on_commit_callbacks):
    body = json.dumps({"type": "ping"})
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, signed_headers(SECRET, body, event_id="evt_1")).json() == {"status": "accepted"}
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_TOLERANCE_SECONDS + 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, signed_headers(SECRET, body, event_id="evt_2")).json() == {"status": "accepted"}
    assert seen(provider) == ["evt_1", "evt_2"]


def test_two_rows_of_a_provider_cannot_hold_the_same_body_at_once(provider):
    # The database decides between two requests racing with the same body, not a read before the write.
    WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="a", body_hash="h" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="b",
                                    body_hash="h" * 64)


def test_the_body_hash_is_keyed_so_a_short_body_cannot_be_guessed_from_it(provider):
    body, headers = signed({"card_number": CARD})
    assert post(body, headers).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.body_hash and event.body_hash != hashlib.sha256(body.encode()).hexdigest()
    assert hashlib.sha256(body.encode()).hexdigest() not in (event.event_id or "")


def test_an_adapters_own_verification_does_not_vouch_for_the_event_id_header(make_provider,
                                                                             django_capture_on_commit_callbacks):
    hooked = make_provider(code="hooked", name="hooked")
    HookAdapter.verdict = True
    with django_capture_on_commit_callbacks(execute=True):
        assert post('{"id": "evt_signed"}', {"X-Eishro-Event-Id": "evt_header"}, code="hooked").status_code == 200
    assert seen(hooked) == ["evt_signed"]


# --- 4. storage flood ---------------------------------------------------------------------------------

BIG_HEADERS = {f"X-Junk-{i}": "j" * 8192 for i in range(90)}


def test_junk_kinds_and_codes_are_refused_before_anything_is_stored(provider, django_assert_num_queries):
    # Not even a query: a flood to codes nobody answers to costs the database nothing.
    with django_assert_num_queries(0):
        for n in range(200):
            response = post("x" * 8192, BIG_HEADERS, kind=f"junk{n}", code="junk")
            assert response.status_code == 404
    for kind, code in [("analytics", "junk"), ("payment", "echo"), ("smm", "nope")]:
        refusal(post("{}", BIG_HEADERS, kind=kind, code=code), 404, "unknown_provider")
    assert WebhookEvent.objects.count() == 0
    assert webhooks.refused_recently() >= 203


def test_a_known_code_without_a_provider_row_stores_nothing(db):
    refusal(post("{}", BIG_HEADERS), 404, "unknown_provider")
    assert WebhookEvent.objects.count() == 0


def test_refusals_at_a_real_provider_are_stored_bounded_and_rate_limited(provider):
    for _ in range(200):
        body = json.dumps({"pad": "p" * 8000, "card_number": CARD})
        response = post(body, {**BIG_HEADERS, "X-Eishro-Timestamp": str(int(time.time())),
                               "X-Eishro-Signature": "sha256=" + "0" * 64})
        refusal(response, 401, "bad_signature")
    # 150 MB in the probe; now what a handful of bounded rows hold, whatever the number of requests.
    assert stored_bytes() < 200_000
    rows = list(WebhookEvent.objects.all())
    assert 1 <= len(rows) <= webhooks.REFUSED_STORED_PER_SOURCE
    for row in rows:
        assert len(row.headers) <= webhooks.MAX_STORED_HEADERS
        assert all(len(k) <= 64 and len(v) <= webhooks.MAX_HEADER_VALUE for k, v in row.headers.items())
        assert "X-Eishro-Signature" in row.headers  # what an operator needs first is kept first
        assert len(row.body) <= webhooks.MAX_REFUSED_BODY and CARD not in row.body
    per_row = webhooks.MAX_STORED_HEADERS * (webhooks.MAX_HEADER_NAME + webhooks.MAX_HEADER_VALUE + 8) + 4 * 1024
    assert stored_bytes() <= webhooks.REFUSED_STORED_PER_SOURCE * (per_row + 500)
    assert webhooks.refused_recently() >= 200


def test_the_rate_limit_is_per_source_and_capped_overall(provider, monkeypatch):
    monkeypatch.setattr(webhooks, "REFUSED_STORED_PER_SOURCE", 2)
    monkeypatch.setattr(webhooks, "REFUSED_STORED_PER_MINUTE", 5)
    for source in ["198.51.100.1", "198.51.100.2", "2001:db8::1", "2001:db8::2", "192.0.2.9"]:
        for _ in range(3):
            refusal(post("{}", remote_addr=source), 401, "missing_signature")
    per_source = dict(WebhookEvent.objects.values_list("remote_addr").annotate(n=Count("pk")))
    assert per_source["198.51.100.1"] == 2 and per_source["198.51.100.2"] == 2
    # One IPv6 /64 is one source (an attacker holds the whole network), and the overall cap holds.
    assert per_source.get("2001:db8::1", 0) + per_source.get("2001:db8::2", 0) == 1
    assert WebhookEvent.objects.count() == 5


# --- 5. accepted bodies are not kept in clear ---------------------------------------------------------


def _secret_body():
    return {"id": "evt_card", "card_number": CARD, "password": PASSWORD, "customer": {"token": TOKEN}}


def test_an_accepted_body_is_kept_encrypted_and_shown_redacted(make_provider, staff,
                                                               django_capture_on_commit_callbacks):
    recorder = make_provider(code="recorder", name="recorder")
    body, headers = signed(_secret_body())
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers, code="recorder").status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.PROCESSED
    # What is kept in clear, and shown, is redacted.
    for secret in (CARD, PASSWORD, TOKEN):
        assert secret not in event.body
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM integrations_webhookevent")
        dump = repr(cur.fetchall())
    for secret in (CARD, PASSWORD, TOKEN):
        assert secret not in dump
    # What the handler needs, it had: the body as the provider sent it.
    assert RecordingAdapter.payloads == [_secret_body()]
    assert event.raw_body == body and event.payload == _secret_body()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    pages = [
        client.get(reverse("admin:integrations_webhookevent_changelist")),
        client.get(reverse("admin:integrations_webhookevent_change", args=[event.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for secret in (CARD, PASSWORD, TOKEN):
            assert secret not in html
    assert "[REDACTED]" in pages[1].content.decode()  # the redacted copy is what is shown
    assert recorder.pk


def test_a_failed_event_is_replayed_from_the_admin_with_its_raw_body(make_provider, staff,
                                                                     django_capture_on_commit_callbacks):
    make_provider(code="recorder", name="recorder")
    RecordingAdapter.fail_next = True
    body, headers = signed(_secret_body())
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers, code="recorder").status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.FAILED and "declined card" in event.error
    assert CARD not in event.error  # a handler's traceback is redacted like the body
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    client.post(reverse("admin:integrations_webhookevent_changelist"),
                {"action": "replay", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED and event.attempts == 2
    assert RecordingAdapter.payloads == [_secret_body()]


def test_a_form_body_is_parsed_as_a_form_and_redacted_as_one(make_provider, django_capture_on_commit_callbacks):
    make_provider(code="recorder", name="recorder")
    body = f"id=evt_form&card_number={CARD}&amount=5"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(body, signed_headers(SECRET, body), code="recorder",
                        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert RecordingAdapter.payloads == [{"id": "evt_form", "card_number": CARD, "amount": "5"}]
    assert CARD not in WebhookEvent.objects.get().body


def test_raw_bodies_are_reencrypted_by_key_rotation(provider, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    body, headers = signed(_secret_body())
    assert post(body, headers).status_code == 200
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_credentials_key")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert WebhookEvent.objects.get().raw_body == body


# --- 17. every guard pinned ---------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [{"api_key": "k" * 12}, {"api_key": "k" * 12, "webhook_secret": ""}])
def test_guard_no_secret_configured_refuses_even_a_body_signed_with_an_empty_key(make_provider, credentials):
    keyless = make_provider(credentials=credentials)
    body = '{"id": "evt_nokey"}'
    timestamp = str(int(time.time()))
    mac = hmac.new(b"", f"{timestamp}..{body}".encode(), hashlib.sha256).hexdigest()
    refusal(post(body, {"X-Eishro-Timestamp": timestamp, "X-Eishro-Signature": f"sha256={mac}"}), 403, "no_secret")
    assert seen(keyless) == []
    with pytest.raises(ValueError):
        webhooks.sign("", timestamp, body)


@pytest.mark.parametrize("drop", ["X-Eishro-Timestamp", "X-Eishro-Signature"])
def test_guard_missing_signature_or_timestamp(provider, drop):
    body, headers = signed({"id": "evt_missing"})
    refusal(post(body, {k: v for k, v in headers.items() if k != drop}), 401, "missing_signature")
    assert seen(provider) == []


@pytest.mark.parametrize("timestamp", ["12a", "²³", "1" * 5000, "-5", " 1"])
def test_guard_a_timestamp_that_is_not_plain_digits(provider, timestamp):
    body, headers = signed({"id": "evt_ts"})
    refusal(post(body, {**headers, "X-Eishro-Timestamp": timestamp}), 401, "missing_signature")


@pytest.mark.parametrize("offset", [-301, 400])
def test_guard_stale_or_future_timestamp(provider, offset):
    body, headers = signed({"id": "evt_stale"}, timestamp=time.time() + offset)
    refusal(post(body, headers), 401, "stale_timestamp")
    assert seen(provider) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body, h: (body, {**h, "X-Eishro-Signature": "sha256=" + "0" * 64}),
        lambda body, h: (body.replace("evt", "EVT"), h),
        lambda body, h: (body, signed_headers("another-secret", body)),
        lambda body, h: (body, {**h, "X-Eishro-Signature": "sha256=é"}),
    ],
    ids=["forged", "tampered", "wrong-secret", "non-ascii"],
)
def test_guard_bad_signature(provider, mutate):
    body, headers = mutate(*signed({"id": "evt_bad"}))
    refusal(post(body, headers), 401, "bad_signature")
    assert seen(provider) == []


def test_guard_the_signature_is_compared_in_constant_time(provider, monkeypatch):
    calls = []
    real = webhooks.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks, "compare_digest", spy)
    body, headers = signed({"id": "evt_ct"})
    assert post(body, headers).status_code == 200
    refusal(post(body, {**headers, "X-Eishro-Signature": "sha256=" + "0" * 64}), 401, "bad_signature")
    # Refused against the cached row, then against a fresh read of it (its secret may have changed).
    assert len(calls) == 3 and calls[1][1] == calls[2][1] == b"sha256=" + b"0" * 64


def test_guard_body_size_limit(provider, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    body, headers = signed({"id": "evt_big", "blob": "x" * 5000})
    refusal(post(body, headers), 413, "too_large")
    assert seen(provider) == []
    assert WebhookEvent.objects.get().body == ""


def test_guard_unknown_provider_kind_or_route(provider, make_provider):
    other = make_provider(code="recorder", name="recorder")
    body, headers = signed({"id": "evt_route"})
    refusal(post(body, headers, kind="payment"), 404, "unknown_provider")
    refusal(post(body, headers, code="nope"), 404, "unknown_provider")
    # A row's own route names its kind and code: another row's id is no way in.
    refusal(post(body, headers, provider=other), 404, "unknown_provider")
    assert seen(provider) == [] and WebhookEvent.objects.count() == 0


def test_guard_an_unregistered_adapter_of_an_existing_row(make_provider):
    make_provider(code="gone", name="gone")
    body, headers = signed({"id": "evt_gone"})
    refusal(post(body, headers, code="gone"), 404, "unknown_provider")
    assert WebhookEvent.objects.count() == 0


def test_guard_duplicate_event_id(provider, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(*signed({"id": "evt_dup", "n": 1}))
        second = post(*signed({"id": "evt_dup", "n": 2}))
    assert first.json() == {"status": "accepted"} and second.json() == {"status": "duplicate"}
    assert seen(provider) == ["evt_dup"]


def test_guard_duplicate_body(provider, django_capture_on_commit_callbacks):
    body = json.dumps({"type": "no id at all"})
    with django_capture_on_commit_callbacks(execute=True):
        post(body, signed_headers(SECRET, body, event_id="one"))
        second = post(body, signed_headers(SECRET, body, event_id="two"))
    assert second.json() == {"status": "duplicate"}
    assert seen(provider) == ["one"]


@pytest.mark.parametrize("verdict", [False, 0, "yes"])
def test_guard_an_adapters_own_verification_saying_no(make_provider, verdict):
    hooked = make_provider(code="hooked", name="hooked")
    HookAdapter.verdict = verdict
    # Even a body correctly signed by the standard scheme: the adapter's answer is the one that counts.
    refusal(post(*signed({"id": "evt_hook"}), code="hooked"), 401, "bad_signature")
    assert seen(hooked) == []


def test_guard_an_adapters_own_verification_saying_yes_skips_the_standard_scheme(make_provider,
                                                                                  django_capture_on_commit_callbacks):
    hooked = make_provider(code="hooked", name="hooked", credentials={"api_key": "k" * 12})
    HookAdapter.verdict = True
    with django_capture_on_commit_callbacks(execute=True):
        assert post('{"id": "evt_own"}', code="hooked").status_code == 200
    assert seen(hooked) == ["evt_own"]


def test_guard_a_deeply_nested_signed_body_is_a_400_not_a_500(provider):
    body = "[" * 100_000 + "]" * 100_000
    refusal(post(body, signed_headers(SECRET, body)), 400, "bad_body")



def test_the_migration_encrypts_and_redacts_bodies_accepted_before_it(provider):
    """Rows written by the old code held the body in clear in `body`: the migration's data step moves
    it to the encrypted column and leaves a redacted copy (run here on today's models)."""
    import importlib
    from types import SimpleNamespace

    step = importlib.import_module("integrations.migrations.0005_webhook_hardening")
    clear = json.dumps({"id": "evt_old", "card_number": CARD, "note": f"key {SECRET}"})
    old = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="evt_old",
                                      state=WebhookEvent.State.PROCESSED, body=clear)
    refused = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo",
                                          state=WebhookEvent.State.REJECTED, body="already redacted")
    step.encrypt_and_redact(apps, SimpleNamespace(connection=connection))
    old.refresh_from_db()
    assert old.raw_body == clear and old.payload["card_number"] == CARD
    assert CARD not in old.body and SECRET not in old.body and "evt_old" in old.body
    refused.refresh_from_db()
    assert refused.raw_body == "" and refused.body == "already redacted"
    step.restore_clear_bodies(apps, SimpleNamespace(connection=connection))
    old.refresh_from_db()
    assert old.body == clear
