"""Where a provider call may go: public addresses only, checked at save time and again when
connecting (for every connection, so a name that later resolves inside — DNS rebinding — or a
redirect to an internal address is refused)."""

import http.server
import socket
import threading

import pytest
from django.core.exceptions import ValidationError

from integrations import addresses, errors
from integrations.http import ProviderClient
from integrations.models import IntegrationLog
from integrations.validators import validate_http_provider_url, validate_provider_url


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.100.100.200", "100.64.0.1",
     "224.0.0.251", "239.255.255.250", "0.0.0.0",  # noqa: S104 "255.255.255.255", "::1", "fe80::1", "fc00::1",
     "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "ff02::1", "198.18.0.1"],
)
def test_internal_addresses_are_not_public(address):
    assert not addresses.is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "41.208.64.1", "2a00:1450:4001:80b::200e"])
def test_internet_addresses_are_public(address):
    assert addresses.is_public(address)


@pytest.fixture
def refuse_private(settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8201\\@example.com/", "http://example.com\\@127.0.0.1/", "http://user:pw@example.com/",
     "http://exa mple.com/", "http://example.com/\x00"],
)
def test_urls_two_parsers_could_read_differently_are_refused(url, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True  # refused even in development
    with pytest.raises(ValidationError):
        validate_provider_url(url)


def test_private_and_unresolvable_hosts_are_refused_at_save(refuse_private):
    for url in ("http://127.0.0.1:8000/api", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
                "http://100.100.100.200/", "ftp://10.0.0.5/files"):
        with pytest.raises(ValidationError) as info:
            validate_provider_url(url)
        assert info.value.code == "private"
    with pytest.raises(ValidationError) as info:
        validate_provider_url("https://no-such-host.invalid/api")
    assert info.value.code == "unresolved"  # fails closed


def test_http_only_fields_refuse_other_schemes(settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True
    validate_provider_url("ftp://127.0.0.1:2121/status")
    with pytest.raises(ValidationError):
        validate_http_provider_url("ftp://127.0.0.1:2121/status")


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = []
    redirect_to = None

    def do_GET(self):
        type(self).hits.append(self.path)
        if type(self).redirect_to:
            self.send_response(307)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Counting.hits, _Counting.redirect_to = [], None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_http_refuses_a_private_address_when_connecting(make_provider, server, settings):
    provider = make_provider(base_url=f"http://127.0.0.1:{server.server_port}/")  # saved while allowed
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    with pytest.raises(errors.ForbiddenDestination) as info:
        ProviderClient(provider, retries=0).request("GET", "x")
    assert info.value.sent is False
    assert _Counting.hits == []  # not one byte reached it
    log = IntegrationLog.objects.get(integration=provider)
    assert log.status == "error" and log.transport == "http"


def test_a_name_rebound_to_an_internal_address_is_refused_when_connecting(make_provider, server, settings,
                                                                          monkeypatch):
    """The name resolved to a public address when the row was saved; at call time it resolves to
    loopback (DNS rebinding): the connection is refused."""
    provider = make_provider(base_url=f"http://rebind.example.com:{server.server_port}/")
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example.com":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(errors.ForbiddenDestination):
        ProviderClient(provider, retries=0).request("GET", "x")
    assert _Counting.hits == []


def test_redirects_are_not_followed(make_provider, server):
    provider = make_provider(base_url=f"http://127.0.0.1:{server.server_port}/")
    _Counting.redirect_to = f"http://127.0.0.1:{server.server_port}/internal"
    with pytest.raises(errors.ProviderProtocolError) as info:
        ProviderClient(provider, retries=0).request("GET", "x")
    assert _Counting.hits == ["/x"]  # the redirect's target was never asked
    assert "internal" not in str(info.value)


def test_an_unresolvable_name_is_not_sent(make_provider):
    provider = make_provider(base_url="http://no-such-host.invalid/")
    with pytest.raises(errors.ProviderUnavailable) as info:
        ProviderClient(provider, retries=0).request("POST", "orders", data={"x": 1})
    assert info.value.sent is False
