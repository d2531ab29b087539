"""Secret canary (issue 11, points 6 and 16): a canary key on a provider of every kind the hub has
(SMM panels, and rows for the FTP, SMTP, S3 (R2), WebSocket and SOAP transports, against the
loopback servers their own tests use), each used once, several by providers that ECHO the key back
(a panel answering `{"error": "Invalid key <KEY>"}` — escaped as PHP's json_encode writes it, which
no byte search of the answer finds —, the same as text, as an HTML page, as a 500 page; an FTP,
SMTP, WebSocket and SOAP server quoting it in their refusals). Then every place the hub keeps or
shows anything is searched for each canary:

  * the database: every column of every table, read with raw SQL (the encrypted credentials column
    must not hold a key in clear);
  * every line the root logger's configured console handler wrote;
  * every answer of every GET operation of the API (lists, details, sub-resources), for the merchant
    and for staff — the monitoring API included;
  * every admin page: the index (the monitoring dashboard), the changelist and the change form of
    every registered model, as a superuser;
  * every e-mail sent: the health round's alerts to operators, after a round that marks the panels
    down and the alert delivery that follows.
"""

import io
import json
import logging
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.contrib import admin
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse
from drf_spectacular.generators import SchemaGenerator
from moto.server import ThreadedMotoServer
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer
from websockets.sync.server import serve

from integrations import errors
from integrations.models import ExternalIntegration, Kind
from integrations.transports.ftp import FtpClient
from integrations.transports.s3 import S3Client
from integrations.transports.smtp import send_mail_via
from integrations.transports.soap import SoapClient
from integrations.transports.websocket import WebSocketConsumer
from monitoring import alerts, health
from monitoring.models import AlertRoute, Channel, Severity
from smm import catalogue, tasks
from smm.models import SMMOrder, SMMProvider
from tests.conftest import client_for
from tests.integrations.transports.test_soap import WSDL, PaymentServer

# One canary per provider: a leak names its provider. The SMM ones hold a "/", which PHP's
# json_encode writes as "\/": the echo is then not the key's bytes, and only the parsed message
# holds the key (the way a real panel's echo slips past a byte search of the answer).
PANEL_MODES = ("json", "text", "html", "500", "json401", "add")
CANARIES = {
    **{f"smm-{mode}": f"cnry/{mode}/Q7vd2LxW9tPz4Hk" for mode in PANEL_MODES},
    "ftp": "cnryFTPpw7Vd2LxW9tPz4",
    "smtp": "cnrySMTPpw7Vd2LxW9tPz",
    "s3": "cnryS3secret/7Vd2LxW9tPz4HkQ8mN2",
    "ws": "cnryWStoken7Vd2LxW9tPz",
    "soap": "cnrySOAPpw7Vd2LxW9tPz",
}


def php_json(data):
    return json.dumps(data).replace("/", "\\/")


# --- the echoing servers ---------------------------------------------------------------------------
class EchoPanel(BaseHTTPRequestHandler):
    """An SMM panel (API v2) that quotes whatever key it gets; the first path segment says how."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        key, action = form.get("key", [""])[0], form.get("action", [""])[0]
        mode = self.path.strip("/").split("/")[0]
        message = f"Invalid key {key}"
        if mode == "add":  # a working panel whose order endpoint echoes the key
            if action == "services":
                return self.answer(200, json.dumps([{"service": 1, "name": "Followers", "type": "Default",
                                                     "category": "Instagram", "rate": "0.90", "min": "10",
                                                     "max": "1000"}]))
            if action == "balance":
                return self.answer(200, json.dumps({"balance": "100.00", "currency": "USD"}))
            return self.answer(200, php_json({"error": message}))
        if mode == "json":
            return self.answer(200, php_json({"error": message}))
        if mode == "json401":
            return self.answer(401, php_json({"message": message, "key": key}))
        if mode == "text":
            return self.answer(200, message, "text/plain")
        if mode == "html":
            return self.answer(200, f"<!DOCTYPE html><html><head><title>{message}</title></head><body>"
                                    f"<h1>{message}</h1><input name=key value=\"{key}\"></body></html>", "text/html")
        return self.answer(500, f"<html><head><title>Server Error (500)</title></head><body><pre>Traceback:\n"
                                f"KeyError: '{key}'\nPOST: key={key}&amp;action={action}</pre></body></html>",
                           "text/html")

    def answer(self, status, text, content_type="application/json"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def panel_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoPanel)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


class EchoFtpHandler(FTPHandler):
    auth_failed_timeout = 0.05

    def ftp_PASS(self, line):
        self.respond(f"530 Login incorrect: password {line} rejected.")


@pytest.fixture
def ftp_server(tmp_path):
    authorizer = DummyAuthorizer()
    authorizer.add_user("vanex", "the-right-one", str(tmp_path), perm="elr")
    handler = type("Handler", (EchoFtpHandler,), {"authorizer": authorizer})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield server.address[1]
    stop.set()
    thread.join(10)


@pytest.fixture
def smtp_port():
    def authenticator(server, session, envelope, mechanism, auth_data):
        password = auth_data.password.decode()
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 Password {password} is wrong")

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def ws_port():
    def process_request(connection_, request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return connection_.respond(403, f"Forbidden: token {token} is not valid\n")

    server = serve(lambda ws: None, "127.0.0.1", 0, process_request=process_request)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1]
    server.shutdown()
    thread.join(5)


@pytest.fixture
def soap_server():
    server = PaymentServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def console():
    """The project's configured console handler (settings.LOGGING, with its redact filter), writing
    into a buffer; INFO and up from every logger, as in production."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


# --- the scans -------------------------------------------------------------------------------------
def database_text():
    """Every column of every table, as text (bytes as they are stored)."""
    places = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            places[f"table {table}"] = "\n".join("\t".join(_text(v) for v in row) for row in cursor.fetchall())
    return places


def _text(value):
    if isinstance(value, memoryview):
        value = bytes(value)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _get_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(path for path, item in schema["paths"].items() if "get" in item)


def _ids(payload):
    items = payload.get("results", payload) if isinstance(payload, dict) else payload
    return [item["id"] for item in items if isinstance(item, dict) and "id" in item] if isinstance(items, list) else []


def api_text(client, who):
    """Every GET operation of the schema, lists first, then each listed row's detail and
    sub-resources (the path's `{id}` filled with the ids of the list it belongs to)."""
    places, ids = {}, {}
    paths = _get_operations()
    for path in paths:
        if "{" in path:
            continue
        r = client.get(path, {"page_size": 1000})
        places[f"{who} GET {path}"] = r.content.decode()
        if r.status_code == 200 and r.get("Content-Type", "").startswith("application/json"):
            ids[path.rstrip("/")] = _ids(r.json())
    for path in paths:
        if "{" not in path:
            continue
        base, _sep, rest = path.partition("{")
        _name, _sep, tail = rest.partition("}")
        if "{" in tail:
            continue  # no operation nests two ids today
        for pk in ids.get(base.rstrip("/"), [])[:50]:
            url = f"{base}{pk}{tail}"
            r = client.get(url)
            places[f"{who} GET {url}"] = r.content.decode()
            assert r.status_code < 500, (url, r.status_code)
    return places


def admin_text(client):
    places = {"admin index (dashboard)": client.get(reverse("admin:index")).content.decode()}
    for model in admin.site._registry:
        opts = model._meta
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:  # pragma: no cover - every registered model has one
            continue
        r = client.get(changelist)
        assert r.status_code == 200, (changelist, r.status_code)
        places[f"admin {changelist}"] = r.content.decode()
        # The newest rows (those the test wrote last, the echoes among them); every row is in the
        # database scan anyway.
        for obj in model._default_manager.order_by("-pk")[:8]:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            places[f"admin {url}"] = r.content.decode()
    return places


def mail_text():
    places = {}
    for i, message in enumerate(mail.outbox):
        parts = [message.subject, message.body, json.dumps(dict(message.extra_headers))]
        parts += [content for content, _type in getattr(message, "alternatives", [])]
        places[f"e-mail {i} to {','.join(message.to)}: {message.subject}"] = "\n".join(parts)
    return places


def leaks(places):
    found = []
    for place, text in places.items():
        for provider, canary in CANARIES.items():
            if canary in text or canary.replace("/", "\\/") in text or canary.replace("/", "%2F") in text:
                found.append(f"{provider} in {place}")
    return found


# --- the test --------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # the health round probes from its own threads
def test_a_canary_key_appears_nowhere(settings, merchant, staff, api, panel_server, ftp_server, smtp_port, ws_port,
                                      soap_server, moto_url, console):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True  # the providers are loopback servers
    settings.OPERATIONS_EMAILS = ["ops@example.ly"]
    settings.LANGUAGE_CODE = "en"
    AlertRoute.objects.create(channel=Channel.EMAIL, min_severity=Severity.INFO, recipients="ops@example.ly")
    AlertRoute.objects.create(channel=Channel.TICKET, min_severity=Severity.INFO)
    AlertRoute.objects.create(channel=Channel.LOG, min_severity=Severity.INFO)
    answers = {}

    # SMM panels, added through the API with their canary keys, each used once.
    panels = {}
    for mode in PANEL_MODES:
        r = api.post("/api/smm/providers", {"name": f"echo-{mode}", "apiUrl": f"{panel_server}/{mode}/api/v2",
                                            "apiKey": CANARIES[f"smm-{mode}"]}, format="json")
        assert r.status_code == 201, r.content
        answers[f"merchant POST providers ({mode})"] = r.content.decode()
        panels[mode] = SMMProvider.objects.get(pk=r.json()["id"])
        panels[mode].integration.configuration = {"retries": 0, "backoff": 0}
        panels[mode].integration.save()
    for mode in ("json", "html", "500"):
        r = api.post(f"/api/smm/providers/{panels[mode].pk}/sync")
        assert r.status_code in (502, 503), (mode, r.status_code)
        answers[f"merchant POST sync ({mode})"] = r.content.decode()
    for mode in ("text", "json401"):
        r = api.post(f"/api/smm/providers/{panels[mode].pk}/balance")
        assert r.status_code in (502, 503), (mode, r.status_code)
        answers[f"merchant POST balance ({mode})"] = r.content.decode()
    # The panel that works until an order is sent: the order's error comes from the echo.
    add = panels["add"]
    assert api.post(f"/api/smm/providers/{add.pk}/sync").status_code == 200
    r = api.post("/api/smm/orders", {"providerId": add.pk, "serviceId": "1", "link": "https://x.example/p",
                                     "quantity": 100}, format="json")
    assert r.status_code == 201, r.content
    order = SMMOrder.objects.get(pk=r.json()["id"])
    tasks.submit_order(order.pk)  # sent already on commit (eager tasks): this one finds nothing to do
    for action in ("refresh", "cancel", "refill"):
        answers[f"merchant POST orders {action}"] = api.post(f"/api/smm/orders/{order.pk}/{action}").content.decode()
    # The operator's admin actions on the echoing panels (their messages are admin pages too).
    admin_client = Client(HTTP_ACCEPT_LANGUAGE="en")
    admin_client.force_login(staff)
    changelist = reverse("admin:smm_smmprovider_changelist")
    for action in ("sync_services", "refresh_balance"):
        admin_client.post(changelist, {"action": action, "_selected_action": [p.pk for p in panels.values()]})
    with pytest.raises(errors.ProviderError):
        catalogue.sync_services(panels["json"])

    # The transports' rows, each used once against a server that quotes the secret back.
    def row(kind, name, url, credentials, **configuration):
        return ExternalIntegration.objects.create(
            kind=kind, code=f"canary_{name}", name=f"canary-{name}", display_name=f"Canary {name}", base_url=url,
            credentials=credentials, configuration={"timeout": 3, "retries": 0, "backoff": 0, **configuration},
        )

    ftp = row(Kind.SHIPPING, "ftp", f"ftp://127.0.0.1:{ftp_server}/", {"username": "vanex",
                                                                       "password": CANARIES["ftp"]})
    with pytest.raises(errors.ProviderError), FtpClient(ftp) as client:
        client.list()
    smtp = row(Kind.EMAIL, "smtp", f"smtp://127.0.0.1:{smtp_port}", {"username": "relay",
                                                                      "password": CANARIES["smtp"]},
               from_email="noreply@eishro.ly")
    with pytest.raises(errors.ProviderError):
        send_mail_via(smtp, "Order shipped", "Your order is on its way.", ["customer@example.ly"])
    s3 = row(Kind.STORAGE, "s3", moto_url, {"access_key_id": "AKIAEISHROCANARY0001",
                                            "secret_access_key": CANARIES["s3"]}, bucket="canary-bucket")
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url, aws_access_key_id="setup",
                 aws_secret_access_key="setup").create_bucket(Bucket="canary-bucket")
    S3Client(s3).put("invoices/1.pdf", b"%PDF-1.7 canary", "application/pdf")
    ws = row(Kind.ANALYTICS, "ws", f"ws://127.0.0.1:{ws_port}/feed", {"token": CANARIES["ws"]})
    with pytest.raises(errors.ProviderError):
        WebSocketConsumer(ws, on_message=lambda message: None).run_once()
    soap = row(Kind.PAYMENT, "soap", soap_server.url, {"api_key": CANARIES["soap"]})
    with pytest.raises(errors.ProviderError):
        SoapClient(soap, WSDL).call("Initiate", MerchantId="M1", Password=CANARIES["soap"], Pin="4821",
                                    Amount=Decimal("12.500"), CardNumber="4111111111111111")

    # A health round marks the echoing panels down; the alerts go out.
    result = health.run_round()
    assert not result.skipped
    assert {result.statuses[f"echo-{mode}"] for mode in ("json", "text", "html", "500", "json401")} <= {
        "unhealthy", "error"}
    assert alerts.process_changes() >= 5
    assert mail.outbox, "the alert e-mails were sent"

    # Every place, searched.
    places = {**answers, **database_text(), **mail_text()}
    places["log output"] = console.getvalue()
    places.update(api_text(api, "merchant"))
    places.update(api_text(client_for(staff), "staff"))
    places.update(admin_text(admin_client))
    assert not leaks(places), "\n".join(leaks(places))
    # The scans reached what they were meant to.
    assert any(place.startswith("staff GET /api/monitoring/health/") and "/history" in place for place in places)
    assert any(place.startswith("admin /admin/monitoring/incident/") and place.count("/") > 4 for place in places)
    assert "Invalid key" in places["log output"] or "echo-json" in places["log output"]
    print(f"places scanned for the canary: {len(places)}")


@pytest.mark.django_db(transaction=True)
def test_a_key_quoted_in_a_provider_error_is_masked_where_it_is_kept_or_shown(settings, merchant, staff, api, console,
                                                                             monkeypatch):
    """Not every transport masks what the provider says (an SMTP or FTP reply, a message decoded
    from an answer the HTTP layer could not recognise the key in): the places that keep or show a
    provider's message (the API's 502/503 `detail`, `lastSyncError`, `HealthCheck.error`,
    `StatusChange.error`, `Incident.description`, the alerts, the monitoring API, the dashboard)
    mask the row's secrets themselves."""
    from smm.panel import PanelV2

    settings.OPERATIONS_EMAILS = ["ops@example.ly"]
    settings.LANGUAGE_CODE = "en"
    AlertRoute.objects.create(channel=Channel.EMAIL, min_severity=Severity.INFO, recipients="ops@example.ly")
    AlertRoute.objects.create(channel=Channel.TICKET, min_severity=Severity.INFO)

    def quoting_call(self, action, *, idempotent, **fields):
        key = self.credentials.get("api_key", "")
        message = f"Invalid key {key}"
        error = errors.ProviderValidationError if action == "services" else errors.ProviderUnavailable
        raise error(message, provider_message=message, status_code=200 if action == "services" else 503)

    monkeypatch.setattr(PanelV2, "call", quoting_call)
    canary = CANARIES["smm-json"]
    r = api.post("/api/smm/providers", {"name": "quoting", "apiUrl": "https://panel.example.com/api/v2",
                                        "apiKey": canary}, format="json")
    provider = SMMProvider.objects.get(pk=r.json()["id"])
    answers = {}
    for action in ("sync", "balance"):
        r = api.post(f"/api/smm/providers/{provider.pk}/{action}")
        assert r.status_code in (502, 503)
        assert "Invalid key" in r.json()["detail"], r.json()  # the provider's words, the key masked
        answers[f"merchant POST {action}"] = r.content.decode()
    provider.refresh_from_db()
    assert provider.last_sync_error.startswith("Invalid key")
    assert health.run_round([provider.integration]).statuses == {"quoting": "unhealthy"}
    assert alerts.process_changes() == 1

    places = {**answers, **database_text(), **mail_text()}
    places["log output"] = console.getvalue()
    places.update(api_text(api, "merchant"))
    places.update(api_text(client_for(staff), "staff"))
    admin_client = Client(HTTP_ACCEPT_LANGUAGE="en")
    admin_client.force_login(staff)
    places.update(admin_text(admin_client))
    assert not leaks(places), "\n".join(leaks(places))
