"""SSRF table (issue 11, points 1, 2, 17 and 18): every URL a merchant or an operator could type to
point the hub at itself, its database, its cache or a cloud's metadata service is refused when it
is saved (the API's 400 on `apiUrl`, the admin's form error on `base_url`) AND when a row saved
while private addresses were allowed is used after they no longer are: the HTTP client raises
before a single byte leaves, and nothing reaches the loopback listener the URL names.

Production settings throughout (`PROVIDER_URL_ALLOW_PRIVATE=False`). `{port}` is the port of a
listener on 127.0.0.1 and [::1] that counts the connections it accepts."""

import http.server
import threading

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from integrations import addresses, errors
from integrations.http import ProviderClient
from integrations.models import ExternalIntegration, IntegrationLog, Kind
from integrations.validators import validate_provider_url
from smm.models import SMMProvider
from smm.providers import create_provider

# (URL, why it is dangerous). Every one is refused at save and at connection time.
TABLE = [
    # Two parsers, two hosts: urllib3 connects to what is before the backslash, urlsplit reads after "@".
    ("http://127.0.0.1:{port}\\@example.com/", "backslash before userinfo (the issue's repro)"),
    ("https://127.0.0.1:{port}\\@example.com/", "backslash, https"),
    ("http://example.com\\@127.0.0.1:{port}/", "backslash, internal host after it"),
    ("http://127.0.0.1:{port}\\\\@example.com/api/v2", "two backslashes"),
    ("http://user:pw@127.0.0.1:{port}/", "userinfo, internal host"),
    ("http://example.com@127.0.0.1:{port}/", "userinfo that looks like the host"),
    ("http://example.com:80@127.0.0.1:{port}/", "userinfo with a port"),
    ("http://127.0.0.1:{port}%2f@example.com/", "userinfo with an encoded slash"),
    ("http://127.0.0.1:{port}#@example.com/", "fragment that looks like userinfo"),
    ("http://127.0.0.1:{port}?@example.com/", "query that looks like userinfo"),
    ("http://127.0.0.1:{port}/ @example.com/", "space"),
    # IPv4 as inet_aton reads it (getaddrinfo accepts all of these).
    ("http://2130706433:{port}/", "decimal"),
    ("http://0177.0.0.1:{port}/", "octal"),
    ("http://017700000001:{port}/", "octal, one number"),
    ("http://0x7f.0.0.1:{port}/", "hex"),
    ("http://0x7f.1:{port}/", "hex, short form"),
    ("http://0x7f000001:{port}/", "hex, one number"),
    ("http://127.1:{port}/", "short form"),
    ("http://127.0.1:{port}/", "short form, three parts"),
    ("http://127.000.000.001:{port}/", "zero padded"),
    ("http://%31%32%37.0.0.1:{port}/", "URL-encoded host (urllib3 decodes it)"),
    ("http://127.0.0.1.:{port}/", "trailing dot on an address"),
    ("http://0:{port}/", "0 is 0.0.0.0: this host"),
    ("http://0.0.0.0:{port}/", "unspecified: this host"),
    # Names.
    ("http://localhost:{port}/", "localhost"),
    ("http://LOCALHOST:{port}/api/v2", "localhost, upper case"),
    ("http://localhost.:{port}/", "localhost, trailing dot"),
    ("http://localtest.me:{port}/", "a public name that resolves to loopback"),
    ("http://localtest.me.:{port}/", "the same, trailing dot"),
    ("http://loopback.attacker.example:{port}/", "resolves to 127.0.0.1 and ::1"),
    ("http://mixed.attacker.example:{port}/", "one loopback answer among public ones"),
    ("http://v6loopback.attacker.example:{port}/", "resolves to ::1 only"),
    ("http://internal.attacker.example/", "resolves to 10.0.0.5"),
    ("http://metadata.google.internal/computeMetadata/v1/", "GCP metadata by name"),
    ("http://no-such-host.invalid/api/v2", "does not resolve (fail closed)"),
    ("https://unresolvable.attacker.example./", "does not resolve, trailing dot"),
    # IPv6.
    ("http://[::1]:{port}/", "IPv6 loopback"),
    ("http://[0:0:0:0:0:0:0:1]:{port}/", "IPv6 loopback, long form"),
    ("http://[::]:{port}/", "IPv6 unspecified"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/", "IPv4-mapped loopback, long form"),
    ("http://[::ffff:7f00:1]:{port}/", "IPv4-mapped loopback, hex"),
    ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped metadata address"),
    ("http://[::127.0.0.1]:{port}/", "IPv4-compatible (deprecated) loopback"),
    ("http://[64:ff9b::127.0.0.1]:{port}/", "NAT64 of loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 of the metadata address"),
    ("http://[2002:7f00:1::1]:{port}/", "6to4 of loopback"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 of the metadata address"),
    ("http://[fe80::1%25lo]:{port}/", "link-local with a zone"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "site-local (deprecated, still routed inside some networks)"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "AWS metadata over IPv6 (unique local)"),
    ("http://[fc00::1]/", "unique local"),
    ("http://[ff02::1]/", "IPv6 multicast, link scope"),
    ("http://[ff0e::1]/", "IPv6 multicast, global scope"),
    # IPv4 ranges that are not global.
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "AWS/Azure/GCP metadata"),
    ("http://169.254.169.254:{port}/", "link-local"),
    ("http://100.100.100.200/latest/meta-data/", "Alibaba metadata (100.64/10)"),
    ("http://100.64.0.1/", "shared address space (carrier-grade NAT)"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://192.0.0.8/", "IETF protocol assignments"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250:1900/", "multicast (SSDP)"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
]
URLS = [url for url, _why in TABLE]


def test_the_table_is_the_size_the_issue_asks():
    assert len(set(URLS)) == len(URLS) >= 40


def _url(template, listener):
    return template.replace("{port}", str(listener.port))


# --- at save ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("template", URLS)
def test_refused_by_the_api_with_a_field_message(template, production, fake_dns, listener, api):
    url = _url(template, listener)
    r = api.post("/api/smm/providers", {"name": "bs", "apiUrl": url, "apiKey": "x"}, format="json")
    assert r.status_code == 400, (url, r.status_code, r.content[:300])
    assert list(r.json()) == ["apiUrl"] and all(r.json()["apiUrl"]), r.json()
    assert not ExternalIntegration.objects.filter(name="bs").exists()


@pytest.fixture
def admin_client(staff):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    return client


@pytest.mark.parametrize("template", URLS)
def test_refused_by_the_admin_form(template, production, fake_dns, listener, admin_client):
    url = _url(template, listener)
    response = admin_client.post(reverse("admin:integrations_externalintegration_add"), {
        "kind": "smm", "code": "panel_v2", "name": "bs", "display_name": "bs", "owner": "", "base_url": url,
        "priority": "1", "status": "active", "configuration": "{}", "credentials_json": '{"api_key": "x"}',
    })
    assert response.status_code == 200, (url, response.status_code)  # the form again, not a redirect
    form_errors = response.context["adminform"].form.errors
    assert list(form_errors) == ["base_url"] and form_errors["base_url"], form_errors
    assert not ExternalIntegration.objects.filter(name="bs").exists()


# --- at connection time ----------------------------------------------------------------------------
@pytest.mark.parametrize("template", URLS)
def test_a_row_saved_while_allowed_is_refused_when_connecting(template, production, fake_dns, listener,
                                                              connections, make_row):
    url = _url(template, listener)
    row = make_row(url)
    with pytest.raises(errors.ProviderError) as info:
        ProviderClient(row, retries=0, timeout=2).request("POST", "", data={"key": "x", "action": "services"})
    error = info.value
    assert isinstance(error, errors.ForbiddenDestination | errors.ProviderUnavailable), (url, repr(error))
    assert error.sent is False, (url, repr(error))
    assert listener.accepted == [], url  # nothing reached the loopback listener
    assert connections == [], (url, connections)  # nor anything else: no connection was even tried
    assert IntegrationLog.objects.filter(integration=row, status="error").count() == 1


@pytest.fixture
def make_row(db, settings):
    def make(url, **extra):
        settings.PROVIDER_URL_ALLOW_PRIVATE = True  # saved in development, or before the rule existed
        try:
            return ExternalIntegration.objects.create(
                kind=Kind.SMM, code="panel_v2", name=f"row-{ExternalIntegration.objects.count()}",
                display_name="Panel", base_url=url, credentials={"api_key": "k-SECRET-123456"}, **extra,
            )
        finally:
            settings.PROVIDER_URL_ALLOW_PRIVATE = False

    return make


# --- the issue's repro (points 1 and 2) ------------------------------------------------------------
def test_the_backslash_repro_is_a_400(production, api):
    r = api.post("/api/smm/providers", {"name": "bs", "apiUrl": "http://127.0.0.1:8201\\@example.com/",
                                        "apiKey": "x"}, format="json")
    assert r.status_code == 400 and r.json()["apiUrl"]


@pytest.mark.parametrize("port", ["65536", "99999"])
def test_a_port_out_of_range_is_a_field_error_not_a_crash(port, settings, api):
    for allow in (False, True):
        settings.PROVIDER_URL_ALLOW_PRIVATE = allow
        r = api.post("/api/smm/providers", {"name": "p", "apiUrl": f"http://example.com:{port}/", "apiKey": "x"},
                     format="json")
        assert r.status_code == 400 and r.json()["apiUrl"], r.content[:300]
        with pytest.raises(ValidationError):
            validate_provider_url(f"ftp://example.com:{port}/")


def test_a_port_scan_through_sync_learns_nothing(production, api, merchant, settings):
    """Ports 5432 (PostgreSQL), 6379 (Redis) and 1 (closed) of the hub itself, saved while allowed:
    the sync answers the same status and the same words for each, and stores the same error."""
    answers = []
    for port in (5432, 6379, 1):
        settings.PROVIDER_URL_ALLOW_PRIVATE = True
        provider = create_provider(owner=merchant, name=f"scan{port}", display_name="Panel",
                                   api_url=f"http://127.0.0.1:{port}/api/v2", api_key="k-SECRET-123456")
        settings.PROVIDER_URL_ALLOW_PRIVATE = False
        r = api.post(f"/api/smm/providers/{provider.pk}/sync")
        provider.refresh_from_db()
        answers.append((r.status_code, r.json(), provider.last_sync_error))
    assert answers[0] == answers[1] == answers[2], answers
    status, body, stored = answers[0]
    assert status == 502 and body["providerError"] == "ForbiddenDestination"
    for text in (body["detail"], stored):
        assert "127.0.0.1" not in text and "5432" not in text and "Errno" not in text


def test_a_panel_error_shows_no_raw_transport_text(api, merchant, settings, listener):
    """Where private addresses are allowed (development), a refused or broken connection is still
    reported in the hub's own words: the socket's text (addresses, ports, urllib3's classes) is for
    the operator's log row, not for the merchant."""
    settings.PROVIDER_URL_ALLOW_PRIVATE = True
    provider = create_provider(owner=merchant, name="closed", display_name="Panel",
                               api_url="http://127.0.0.1:1/api/v2", api_key="k-SECRET-123456")
    provider.integration.configuration = {"retries": 0}
    provider.integration.save()
    r = api.post(f"/api/smm/providers/{provider.pk}/sync")
    provider.refresh_from_db()
    assert r.status_code == 503
    for text in (r.json()["detail"], provider.last_sync_error):
        assert "Could not reach Panel" in text
        assert "127.0.0.1" not in text and "Errno" not in text and "HTTPConnection" not in text, text
    log = IntegrationLog.objects.get(integration=provider.integration)
    assert "port=1" in log.error_message  # the operator keeps the detail


# --- redirects to metadata addresses ----------------------------------------------------------------
class _Provider(http.server.BaseHTTPRequestHandler):
    """A provider on 127.0.0.2 (counted as public below) that redirects every call."""

    location = ""
    status = 307

    def do_POST(self):
        self.server.hits.append((self.path, self.headers.get("Content-Length")))
        self.send_response(self.status)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


def _serve(host, handler):
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def metadata_server():
    """A stand-in for the metadata service, on 127.0.0.3 (internal, as 169.254.169.254 is)."""

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.hits.append(self.path)
            body = b'{"AccessKeyId": "ASIA-INTERNAL", "SecretAccessKey": "internal-secret"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server, thread = _serve("127.0.0.3", Metadata)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(2)


REDIRECT_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
    "http://100.100.100.200/latest/meta-data/",
    "http://127.0.0.3:{metadata}/latest/meta-data/iam/security-credentials/",
    "http://localhost:{metadata}/",
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_a_redirect_to_a_metadata_address_is_not_followed(target, status, production, fake_dns, metadata_server,
                                                          connections, monkeypatch, merchant, api):
    real_is_public = addresses.is_public
    monkeypatch.setattr(addresses, "is_public", lambda a: str(a) == "127.0.0.2" or real_is_public(a))
    handler = type("Redirecting", (_Provider,), {
        "location": target.replace("{metadata}", str(metadata_server.server_address[1])), "status": status})
    provider_server, thread = _serve("127.0.0.2", handler)
    try:
        provider = create_provider(owner=merchant, name="redirecting", display_name="Panel",
                                   api_url=f"http://127.0.0.2:{provider_server.server_address[1]}/api/v2",
                                   api_key="k-SECRET-123456")
        provider.integration.configuration = {"retries": 0}
        provider.integration.save()
        r = api.post(f"/api/smm/providers/{provider.pk}/sync")
    finally:
        provider_server.shutdown()
        provider_server.server_close()
        thread.join(2)
    assert len(provider_server.hits) == 1  # the provider was asked once, the redirect not followed
    assert metadata_server.hits == []
    assert {host for host, _port in connections} == {"127.0.0.2"}, connections
    assert r.status_code == 503 and r.json()["providerError"] == "ProviderProtocolError"
    provider.refresh_from_db()
    for text in (r.json()["detail"], provider.last_sync_error):
        assert "169.254" not in text and "metadata" not in text and "127.0.0.3" not in text, text
    assert SMMProvider.objects.get(pk=provider.pk).services_count == 0
