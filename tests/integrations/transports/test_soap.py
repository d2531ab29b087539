"""The SOAP transport against a real SOAP server on loopback (a threaded `http.server` answering
the payment service of `payment_service.wsdl`)."""

import io
import logging
import re
import sys
import threading
import time
import traceback
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from integrations import errors
from integrations.models import IntegrationLog
from integrations.transports.soap import SoapClient

WSDL = Path(__file__).with_name("payment_service.wsdl")
PASSWORD = "pw-Right-7781"  # the merchant's password: the row's api_key
STALE_PASSWORD = "pw-Stale-0000"
PIN = "748215"  # six digits: no loopback port (five at most) can contain it by chance
CARD = "4111111111111111"
SECRETS = (PASSWORD, PIN, CARD)


def envelope(body):
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>")


def fault(code, text):
    return envelope(f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{escape(text)}</faultstring></soap:Fault>")


def field(body, name):
    match = re.search(rf"<(?:[\w-]+:)?{name}>([^<]*)</", body)
    return match.group(1) if match else None


class PaymentHandler(BaseHTTPRequestHandler):
    """The provider: Initiate checks the password and the amount, Status knows a few references
    that misbehave (BUSY, CRASH, XML500, GARBAGE, SLOW)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(("GET", self.path, None, dict(self.headers)))
        documents = self.server.documents
        if self.path in documents:
            return self.answer(200, documents[self.path], "text/xml; charset=utf-8")
        return self.answer(404, "not found", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.requests.append(("POST", self.path, body, dict(self.headers)))
        if "<ns0:Initiate" in body:
            return self.initiate(body)
        return self.status(field(body, "Reference"))

    def initiate(self, body):
        merchant, password = field(body, "MerchantId"), field(body, "Password")
        if merchant == "SLOW":
            time.sleep(1.5)
        if password != PASSWORD:
            return self.answer(500, fault("soap:Client", f"Authentication failed: password {password} rejected"))
        if Decimal(field(body, "Amount")) <= 0:
            return self.answer(500, fault("soap:Client", f"Amount must be positive (card {field(body, 'CardNumber')})"))
        echo = f"card {field(body, 'CardNumber')} pin={field(body, 'Pin')} password={password}"
        return self.answer(200, envelope(
            '<InitiateResponse xmlns="urn:eishro:test:payments">'
            f"<Reference>REF-{merchant}-1</Reference><Echo>{escape(echo)}</Echo></InitiateResponse>"))

    def status(self, reference):
        if reference == "BUSY":
            return self.answer(503, "<html><body>Service busy</body></html>", "text/html")
        if reference == "CRASH":
            return self.answer(500, "<html><body>Internal Server Error</body></html>", "text/html")
        if reference == "XML500":
            return self.answer(500, envelope("<Oops/>"))
        if reference == "GARBAGE":
            return self.answer(200, "surprise", "text/plain")
        if reference and reference.startswith("REF-"):
            return self.answer(200, envelope(
                '<StatusResponse xmlns="urn:eishro:test:payments">'
                f"<Reference>{reference}</Reference><State>paid</State><Amount>12.500</Amount></StatusResponse>"))
        return self.answer(500, fault("soap:Client", f"No such payment {reference}"))

    def answer(self, status, text, content_type="text/xml; charset=utf-8"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class PaymentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), PaymentHandler)
        self.connections = 0
        self.requests = []
        self.documents = {"/service.wsdl": WSDL.read_text()}

    def verify_request(self, request, client_address):
        self.connections += 1
        return True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting
            super().handle_error(request, client_address)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/soap"

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]


@pytest.fixture
def server():
    server = PaymentServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def provider(make_provider, server):
    return make_provider(
        base_url=server.url,
        credentials={"api_key": PASSWORD, "webhook_secret": "whsec_TOPSECRET99", "username": "ops"},
        configuration={"backoff": 0, "circuit_breaker_threshold": 3, "circuit_breaker_cooldown": 60},
    )


@pytest.fixture
def console():
    """The stream of the project's configured console handler (settings.LOGGING, with its redact
    filter), swapped for a buffer."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def initiate(client, merchant="M1", password=PASSWORD, amount="12.500"):
    return client.call("Initiate", MerchantId=merchant, Password=password, Pin=PIN, Amount=Decimal(amount),
                       CardNumber=CARD)


def test_an_operation_returns_plain_python_and_is_logged_as_a_soap_call(provider, server):
    client = SoapClient(provider, WSDL, safe={"Status"})
    result = client.call("Status", Reference="REF-M1-1")

    assert result == {"Reference": "REF-M1-1", "State": "paid", "Amount": Decimal("12.500")}
    assert type(result) is dict
    ((_method, path, _body, headers),) = server.posts()
    assert path == "/soap"  # the row's base_url, not the WSDL's address
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert headers["SOAPAction"] == '"urn:eishro:test:payments/Status"'
    row = IntegrationLog.objects.get(integration=provider)
    assert (row.transport, row.operation, row.method, row.endpoint) == ("soap", "Status", "POST", server.url)
    assert (row.status, row.response_status) == ("success", 200)
    assert "<ns0:Reference>REF-M1-1</ns0:Reference>" in row.request_body
    assert "<State>paid</State>" in row.response_body


def test_password_pin_and_card_number_never_appear_in_clear_in_the_log_row_or_the_log_output(
    provider, server, console
):
    soap_logger = logging.getLogger("integrations.transports.soap")
    zeep_logger = logging.getLogger("zeep.transports")
    levels = soap_logger.level, zeep_logger.level
    soap_logger.setLevel(logging.DEBUG)
    zeep_logger.setLevel(logging.DEBUG)
    try:
        result = initiate(SoapClient(provider, WSDL))
        # What zeep's own transport would log at DEBUG: the envelope as it went out.
        sent_envelope = server.posts()[0][2]
        zeep_logger.debug("HTTP Post to %s:\n%s", server.url, sent_envelope)
    finally:
        soap_logger.setLevel(levels[0])
        zeep_logger.setLevel(levels[1])

    assert all(secret in sent_envelope for secret in SECRETS)  # the provider did get them
    assert result["Reference"] == "REF-M1-1" and PIN in result["Echo"]  # and echoed them back
    row = IntegrationLog.objects.get(integration=provider)
    logged = "\n".join([row.request_body, row.response_body, row.error_message, row.endpoint])
    output = console.getvalue()
    assert "SOAP Initiate to" in output and "HTTP Post to" in output
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in output
    assert "<ns0:Password>[REDACTED]</ns0:Password>" in row.request_body
    assert "<ns0:Pin>[REDACTED]</ns0:Pin>" in row.request_body
    assert "<ns0:Password>[REDACTED]</ns0:Password>" in output
    assert "<ns0:MerchantId>M1</ns0:MerchantId>" in row.request_body  # not everything is masked


def test_a_fault_is_a_validation_error_with_the_providers_message_redacted(provider):
    with pytest.raises(errors.ProviderValidationError) as caught:
        initiate(SoapClient(provider, WSDL), amount="0")
    assert caught.value.provider_message == "Amount must be positive (card 411111******1111)"
    assert (caught.value.sent, caught.value.outage, caught.value.status_code) == (True, False, 500)
    assert CARD not in "".join(traceback.format_exception(caught.value))  # zeep's Fault is not chained
    row = IntegrationLog.objects.get(integration=provider)
    assert (row.operation, row.status, row.response_status) == ("Initiate", "error", 500)
    assert "Amount must be positive (card 411111******1111)" in row.response_body


def test_an_authentication_fault_is_an_auth_error_with_the_echoed_password_masked(make_provider, server):
    stale = make_provider(base_url=server.url, credentials={"api_key": STALE_PASSWORD})
    with pytest.raises(errors.ProviderAuthError) as caught:
        initiate(SoapClient(stale, WSDL), password=stale.credentials["api_key"])
    assert caught.value.provider_message == "Authentication failed: password [REDACTED] rejected"
    row = IntegrationLog.objects.get(integration=stale)
    assert STALE_PASSWORD not in row.request_body + row.response_body
    assert "Authentication failed" in row.response_body


def test_faults_never_open_the_breaker_but_503s_do(provider, server):
    client = SoapClient(provider, WSDL)
    for _ in range(5):  # threshold 3
        with pytest.raises(errors.ProviderValidationError):
            client.call("Status", Reference="NOPE")
    assert client.tracer.breaker.state == "closed"

    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable) as caught:
            client.call("Status", Reference="BUSY")  # not declared safe: one attempt each
        assert caught.value.status_code == 503
    assert client.tracer.breaker.state == "open"
    with pytest.raises(errors.CircuitOpen):
        client.call("Status", Reference="REF-M1-1")
    assert len(server.posts()) == 8


@pytest.mark.parametrize("reference", ["CRASH", "XML500"])
def test_a_500_that_is_not_a_fault_is_an_outage(make_provider, server, reference):
    provider = make_provider(base_url=server.url, configuration={"circuit_breaker_threshold": 1})
    client = SoapClient(provider, WSDL)
    with pytest.raises(errors.ProviderUnavailable) as caught:
        client.call("Status", Reference=reference)
    assert caught.value.status_code == 500
    assert client.tracer.breaker.state == "open"


def test_an_answer_that_is_not_soap_is_a_protocol_error(provider):
    with pytest.raises(errors.ProviderProtocolError):
        SoapClient(provider, WSDL).call("Status", Reference="GARBAGE")
    assert IntegrationLog.objects.get(integration=provider).response_body == "surprise"


def test_a_safe_operation_is_retried_and_a_write_is_not(make_provider, server):
    provider = make_provider(base_url=server.url, configuration={"backoff": 0, "circuit_breaker_threshold": 10})
    client = SoapClient(provider, WSDL, safe={"Status"})
    with pytest.raises(errors.ProviderUnavailable):
        client.call("Status", Reference="BUSY")
    assert len(server.posts()) == 3  # 1 + configured retries (2)

    with pytest.raises(errors.ProviderUnavailable):
        SoapClient(provider, WSDL).call("Status", Reference="BUSY")
    assert len(server.posts()) == 4


def test_a_timeout_on_a_write_is_an_unknown_outcome(make_provider, server):
    provider = make_provider(base_url=server.url, credentials={"api_key": PASSWORD},
                             configuration={"timeout": 0.3})
    with pytest.raises(errors.UnknownOutcome):
        initiate(SoapClient(provider, WSDL), merchant="SLOW")
    assert len(server.posts()) == 1
    assert IntegrationLog.objects.get(integration=provider).status == "timeout"


def test_a_request_that_does_not_match_the_wsdl_is_refused_before_sending(provider, server):
    with pytest.raises(errors.ProviderValidationError) as caught:
        SoapClient(provider, WSDL).call("Initiate", MerchantId="M1", Password=PASSWORD)
    assert caught.value.sent is False
    assert server.posts() == []


def test_a_wsdl_from_a_url_is_fetched_through_the_traced_session_once_per_provider(provider, server):
    wsdl_url = server.url.replace("/soap", "/service.wsdl")
    SoapClient(provider, wsdl_url)
    result = SoapClient(provider, wsdl_url, safe={"Status"}).call("Status", Reference="REF-X-1")

    assert result["State"] == "paid"
    gets = [r for r in server.requests if r[0] == "GET"]
    assert len(gets) == 1
    assert gets[0][3]["User-Agent"].startswith("EISHRO")
    operations = list(IntegrationLog.objects.filter(integration=provider).order_by("started_at")
                      .values_list("transport", "operation", "endpoint"))
    assert operations == [("soap", "wsdl", wsdl_url), ("soap", "Status", server.url)]


def test_a_remote_wsdl_may_not_make_us_read_a_local_file(provider, server):
    server.documents["/evil.wsdl"] = WSDL.read_text().replace(
        '<xsd:schema targetNamespace="urn:eishro:test:payments" elementFormDefault="qualified">',
        '<xsd:schema targetNamespace="urn:eishro:test:payments" elementFormDefault="qualified">'
        '<xsd:include schemaLocation="file:///etc/hostname"/>',
    )
    with pytest.raises(errors.ProviderProtocolError, match="file:///etc/hostname"):
        SoapClient(provider, server.url.replace("/soap", "/evil.wsdl"))


def test_a_private_destination_is_refused_when_private_addresses_are_not_allowed(provider, server, settings):
    client = SoapClient(provider, WSDL)
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    with pytest.raises(errors.ForbiddenDestination) as caught:
        initiate(client)
    assert caught.value.sent is False
    assert server.connections == 0
    row = IntegrationLog.objects.get(integration=provider)
    assert (row.transport, row.operation, row.status) == ("soap", "Initiate", "error")
