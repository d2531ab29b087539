"""The FTP transport against a real FTP server on loopback (pyftpdlib's ThreadedFTPServer), and FTPS
against its TLS handler with a certificate made here."""

import datetime
import logging
import os
import socket
import ssl
import threading
import time

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from integrations import errors
from integrations.models import IntegrationLog
from integrations.transports.ftp import FtpClient

USER = "vanex"
PASSWORD = "Ftp-Pa55word-719"
CARD = "4111111111111111"


class ProviderHandler(FTPHandler):
    """pyftpdlib's handler, with a few files that misbehave the way real servers do."""

    connections = None  # a list per server, set by FtpServer
    auth_failed_timeout = 0.1  # pyftpdlib waits 3 s before refusing a login

    def on_connect(self):
        self.connections.append(self.remote_ip)

    def ftp_SIZE(self, path):
        if os.path.basename(path).startswith("nosize"):
            return self.respond("502 Command not implemented.")
        return super().ftp_SIZE(path)

    def ftp_STOR(self, file, mode="w"):
        if os.path.basename(file).startswith("slow"):
            time.sleep(1)
        return super().ftp_STOR(file, mode)

    def ftp_DELE(self, path):
        if os.path.basename(path).startswith("busy"):
            return self.respond("450 File busy, try later.")
        return super().ftp_DELE(path)

    def ftp_RNFR(self, path):
        if os.path.basename(path).startswith("vanish"):
            return self.close()  # the server goes away without a word
        return super().ftp_RNFR(path)


class FtpServer:
    def __init__(self, root, handler=ProviderHandler, **attributes):
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
        self.connections = []
        handler = type("Handler", (handler,), {"authorizer": authorizer, "connections": self.connections,
                                               **attributes})
        self.server = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self.server.close_all()

    def stop(self):
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)


@pytest.fixture(autouse=True)
def _quiet_pyftpdlib():
    logger = logging.getLogger("pyftpdlib")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def ftp_server(tmp_path):
    server = FtpServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def provider(make_provider, ftp_server):
    return make_provider(
        base_url=f"ftp://127.0.0.1:{ftp_server.port}/",
        credentials={"username": USER, "password": PASSWORD},
        configuration={"circuit_breaker_threshold": 3, "circuit_breaker_cooldown": 60, "timeout": 5},
    )


def rows(provider):
    return list(IntegrationLog.objects.filter(integration=provider).order_by("started_at", "id"))


def test_list_store_retrieve_rename_delete_round_trip_on_one_connection(provider, ftp_server, tmp_path):
    with FtpClient(provider) as ftp:
        assert ftp.list() == []
        ftp.store("orders.csv", "order,amount\n1,12.500\n")
        assert ftp.list() == ["orders.csv"]
        assert ftp.retrieve("orders.csv") == b"order,amount\n1,12.500\n"
        ftp.rename("orders.csv", "done.csv")
        assert (tmp_path / "done.csv").read_text() == "order,amount\n1,12.500\n"
        ftp.delete("done.csv")
        assert ftp.list() == []

    assert len(ftp_server.connections) == 1
    logged = [(r.transport, r.operation, r.method, r.endpoint, r.status, r.response_status) for r in rows(provider)]
    base = f"ftp://127.0.0.1:{ftp_server.port}"
    assert logged == [
        ("ftp", "ftp.connect", "USER", f"{base}/", "success", 230),
        ("ftp", "ftp.list", "NLST", f"{base}/", "success", 226),
        ("ftp", "ftp.store", "STOR", f"{base}/orders.csv", "success", 226),
        ("ftp", "ftp.list", "NLST", f"{base}/", "success", 226),
        ("ftp", "ftp.retrieve", "RETR", f"{base}/orders.csv", "success", 226),
        ("ftp", "ftp.rename", "RNFR", f"{base}/orders.csv", "success", 250),
        ("ftp", "ftp.delete", "DELE", f"{base}/done.csv", "success", 250),
        ("ftp", "ftp.list", "NLST", f"{base}/", "success", 226),
    ]
    provider.refresh_from_db()
    assert (provider.total_requests, provider.successful_requests) == (8, 8)


def test_the_base_urls_path_is_the_working_directory(make_provider, ftp_server, tmp_path):
    (tmp_path / "outbound").mkdir()
    (tmp_path / "outbound" / "a.txt").write_text("a")
    provider = make_provider(base_url=f"ftp://127.0.0.1:{ftp_server.port}/outbound",
                             credentials={"username": USER, "password": PASSWORD})
    with FtpClient(provider) as ftp:
        assert ftp.list() == ["a.txt"]
        assert ftp.retrieve("a.txt") == b"a"
    assert rows(provider)[-1].endpoint == f"ftp://127.0.0.1:{ftp_server.port}/outbound/a.txt"


def test_files_are_logged_as_text_by_their_type_with_secrets_masked(provider, tmp_path):
    (tmp_path / "export.json").write_text('{"order": 7, "password": "hunter22", "note": "fine"}')
    (tmp_path / "photo.png").write_bytes(b"\x89PNG" + bytes(60))
    with FtpClient(provider) as ftp:
        ftp.store("cards.csv", f"order,card\n1,{CARD}\n")
        ftp.retrieve("export.json")
        ftp.retrieve("photo.png")
    store, json_row, png_row = rows(provider)[1:]
    assert store.request_body == "order,card\n1,411111******1111\n"
    assert "hunter22" not in json_row.response_body and '"order": 7' in json_row.response_body
    assert png_row.response_body == "[64 bytes]"


def test_a_wrong_password_is_an_auth_error_logged_without_the_password(make_provider, ftp_server):
    provider = make_provider(base_url=f"ftp://127.0.0.1:{ftp_server.port}/",
                             credentials={"username": USER, "password": "Wrong-Pa55word-000"})
    with pytest.raises(errors.ProviderAuthError) as caught:
        FtpClient(provider).list()
    assert caught.value.status_code == 530 and caught.value.outage is False
    (row,) = rows(provider)
    assert (row.transport, row.operation, row.status, row.error_code) == ("ftp", "ftp.connect", "error", "ftp_530")
    assert "530" in row.response_body
    every_field = " ".join(str(v) for v in IntegrationLog.objects.filter(pk=row.pk).values().get().values())
    assert "Wrong-Pa55word-000" not in every_field
    assert PASSWORD not in every_field


def test_a_missing_file_is_a_validation_error_that_never_opens_the_breaker(provider, ftp_server):
    with FtpClient(provider) as ftp:
        for _ in range(5):  # threshold 3
            with pytest.raises(errors.ProviderValidationError) as caught:
                ftp.retrieve("missing.csv")
            assert caught.value.status_code == 550
        assert ftp.list() == []  # the connection is still good
    assert ftp.tracer.breaker.state == "closed"
    assert len(ftp_server.connections) == 1
    assert rows(provider)[1].error_code == "ftp_550"


def test_a_stopped_server_is_unavailable_unsent_and_counted(provider, ftp_server):
    ftp_server.stop()
    client = FtpClient(provider)
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable) as caught:
            client.store("orders.csv", "x")
        assert caught.value.sent is False
    assert client.tracer.breaker.state == "open"
    with pytest.raises(errors.CircuitOpen):
        client.store("orders.csv", "x")
    assert [(r.operation, r.error_code) for r in rows(provider)] == [("ftp.connect", "connection")] * 3


def test_a_4xx_reply_is_unavailable_and_counts_towards_the_breaker(provider, tmp_path):
    (tmp_path / "busy.csv").write_text("x")
    with FtpClient(provider) as ftp:
        for _ in range(3):
            with pytest.raises(errors.ProviderUnavailable) as caught:
                ftp.delete("busy.csv")
            assert (caught.value.status_code, caught.value.provider_message) == (450, "450 File busy, try later.")
        assert ftp.tracer.breaker.state == "open"


def test_a_server_hanging_up_is_a_protocol_error_and_the_next_operation_reconnects(provider, ftp_server, tmp_path):
    (tmp_path / "vanish.csv").write_text("x")
    with FtpClient(provider) as ftp:
        with pytest.raises(errors.ProviderProtocolError):
            ftp.rename("vanish.csv", "elsewhere.csv")
        assert ftp.list() == ["vanish.csv"]
    assert len(ftp_server.connections) == 2


def test_a_file_over_the_size_limit_is_refused_before_downloading(make_provider, ftp_server, tmp_path):
    (tmp_path / "big.csv").write_text("x" * 100)
    provider = make_provider(base_url=f"ftp://127.0.0.1:{ftp_server.port}/",
                             credentials={"username": USER, "password": PASSWORD},
                             configuration={"max_file_bytes": 50})
    with FtpClient(provider) as ftp, pytest.raises(errors.ProviderValidationError, match="100"):
        ftp.retrieve("big.csv")
    assert rows(provider)[-1].error_code == "too_large"


def test_a_file_over_the_size_limit_is_cut_off_when_the_server_has_no_size_command(make_provider, ftp_server,
                                                                                  tmp_path):
    (tmp_path / "nosize.csv").write_bytes(b"x" * 300_000)
    (tmp_path / "small.txt").write_text("ok")
    provider = make_provider(base_url=f"ftp://127.0.0.1:{ftp_server.port}/",
                             credentials={"username": USER, "password": PASSWORD},
                             configuration={"max_file_bytes": 10_000})
    with FtpClient(provider) as ftp:
        with pytest.raises(errors.ProviderValidationError, match="10000"):
            ftp.retrieve("nosize.csv")
        assert ftp.retrieve("small.txt") == b"ok"  # on a new connection
    assert len(ftp_server.connections) == 2


def test_a_timeout_during_a_store_is_an_unknown_outcome(make_provider, ftp_server):
    provider = make_provider(base_url=f"ftp://127.0.0.1:{ftp_server.port}/",
                             credentials={"username": USER, "password": PASSWORD}, configuration={"timeout": 0.3})
    with FtpClient(provider) as ftp:
        with pytest.raises(errors.UnknownOutcome):
            ftp.store("slow.csv", "x")
    row = rows(provider)[-1]
    assert (row.operation, row.status, row.error_code) == ("ftp.store", "timeout", "timeout")


def test_a_server_that_never_greets_is_a_timeout_while_connecting_and_unsent(make_provider):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts into its backlog, never answers
    try:
        provider = make_provider(base_url=f"ftp://127.0.0.1:{silent.getsockname()[1]}/",
                                 credentials={"username": USER, "password": PASSWORD},
                                 configuration={"timeout": 0.2})
        with pytest.raises(errors.ProviderUnavailable) as caught:
            FtpClient(provider).store("orders.csv", "x")
    finally:
        silent.close()
    assert caught.value.sent is False
    (row,) = rows(provider)
    assert (row.operation, row.status) == ("ftp.connect", "timeout")


def test_a_private_destination_is_refused_when_private_addresses_are_not_allowed(provider, ftp_server, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    with pytest.raises(errors.ForbiddenDestination) as caught:
        FtpClient(provider).list()
    assert caught.value.sent is False
    time.sleep(0.1)  # a connection, had there been one, would have been seen by now
    assert ftp_server.connections == []
    (row,) = rows(provider)
    assert (row.transport, row.operation, row.status, row.error_code) == ("ftp", "ftp.connect", "error", "forbidden")


# --- FTPS -----------------------------------------------------------------------------------------
def certificate(tmp_path, name):
    """A self-signed certificate for the host name `name` only: (PEM file with its key, the certificate alone)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    both, alone = tmp_path / f"{name}.pem", tmp_path / f"{name}.crt"
    both.write_bytes(cert_pem + key_pem)
    alone.write_bytes(cert_pem)
    return str(both), str(alone)


@pytest.fixture
def ftps(tmp_path):
    pytest.importorskip("OpenSSL", reason="pyftpdlib's FTPS server (TLS_FTPHandler) needs pyOpenSSL, not installed")
    from pyftpdlib.handlers import TLS_FTPHandler

    root = tmp_path / "root"
    root.mkdir()
    pem, crt = certificate(tmp_path, "localhost")
    handler = type("TLSProviderHandler", (TLS_FTPHandler, ProviderHandler), {})
    server = FtpServer(root, handler, certfile=pem, tls_control_required=True, tls_data_required=True)
    yield server, root, crt
    server.stop()


def test_ftps_round_trip_with_the_certificate_checked_against_the_host_name(make_provider, ftps):
    server, root, crt = ftps
    provider = make_provider(base_url=f"ftps://localhost:{server.port}/",
                             credentials={"username": USER, "password": PASSWORD})
    with FtpClient(provider, ssl_context=ssl.create_default_context(cafile=crt)) as ftp:
        ftp.store("orders.csv", f"order,card\n1,{CARD}\n")
        assert ftp.list() == ["orders.csv"]
        assert ftp.retrieve("orders.csv") == f"order,card\n1,{CARD}\n".encode()
    assert (root / "orders.csv").exists()
    assert rows(provider)[0].endpoint == f"ftps://localhost:{server.port}/"
    assert all(r.status == "success" for r in rows(provider))


def test_ftps_refuses_a_certificate_that_is_not_for_the_host_name(make_provider, ftps):
    server, _root, crt = ftps
    # The certificate is trusted, but names "localhost", not 127.0.0.1.
    provider = make_provider(base_url=f"ftps://127.0.0.1:{server.port}/",
                             credentials={"username": USER, "password": PASSWORD})
    with pytest.raises(errors.ProviderUnavailable) as caught:
        FtpClient(provider, ssl_context=ssl.create_default_context(cafile=crt)).list()
    assert caught.value.sent is False
    assert rows(provider)[0].error_code == "tls"
