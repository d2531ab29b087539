"""A secret quoted by the fault under a transport's error (a library's text quoting a bad status
line or header, a server's greeting or refusal) never reaches the ProviderError's str, its provider
message, the call's log row or the admin: the tracer masks every error leaving any transport with
the row's secrets, where the error is created.

Each transport talks to a raw loopback server that quotes the secret in a malformed or refusing
answer of that transport's own protocol."""

import socket
import threading

import pytest
from django.test import Client
from django.urls import reverse

from integrations import errors
from integrations.http import ProviderClient
from integrations.models import IntegrationLog
from integrations.transports.ftp import FtpClient
from integrations.transports.s3 import S3Client
from integrations.transports.smtp import send_mail_via
from integrations.transports.websocket import WebSocketConsumer

SECRET = "sk_live_MASKme7Vd2LxW9tPz4"


class RawServer:
    """Answers every connection with `answer` (after the request's head when `listen_first`), then
    closes it."""

    def __init__(self, answer, listen_first):
        self.answer, self.listen_first = answer, listen_first
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stopped = threading.Event()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    if self.listen_first:
                        head = b""
                        while b"\r\n\r\n" not in head:
                            chunk = conn.recv(65536)
                            if not chunk:
                                break
                            head += chunk
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(answer, listen_first=True):
        server = RawServer(answer.replace("SECRET", SECRET).encode(), listen_first)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


def http_call(provider):
    ProviderClient(provider, retries=0).request("POST", "orders", data={"amount": "1"})


def s3_call(provider):
    S3Client(provider, bucket="b").client.put_object(Bucket="b", Key="a.txt", Body=b"x")


def ws_call(provider):
    WebSocketConsumer(provider, on_message=lambda message: None).run_once()


def smtp_call(provider):
    send_mail_via(provider, "Hello", "Body", ["someone@example.ly"], from_email="hub@example.ly")


def ftp_call(provider):
    with FtpClient(provider) as client:
        client.list()


BAD_STATUS = "HTTP/1.1 2x0 SECRET\r\nContent-Length: 0\r\n\r\n"
CASES = {
    # requests' text: ('Connection aborted.', BadStatusLine('HTTP/1.1 2x0 <secret>'))
    "http": ("http", BAD_STATUS, True, {"api_key": SECRET}, http_call),
    "s3": ("http", BAD_STATUS, True, {"access_key_id": "AKIAEISHROMASK000001", "secret_access_key": SECRET}, s3_call),
    # websockets' text: invalid Sec-WebSocket-Accept header: <secret>
    "ws": ("ws", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: SECRET\r\n\r\n", True, {"token": SECRET}, ws_call),
    # smtplib's SMTPConnectError quoting the greeting
    "smtp": ("smtp", "554 5.7.1 no relay for SECRET\r\n", False, {"username": "relay", "password": SECRET},
             smtp_call),
    # ftplib's error_perm quoting the greeting
    "ftp": ("ftp", "530 not with SECRET\r\n", False, {"username": "vanex", "password": SECRET}, ftp_call),
}


@pytest.mark.parametrize("transport", sorted(CASES))
def test_a_secret_quoted_by_the_fault_never_leaves_the_transport(transport, raw_server, make_provider, settings,
                                                                 django_user_model):
    settings.PROVIDER_URL_ALLOW_PRIVATE = True
    scheme, answer, listen_first, credentials, call = CASES[transport]
    port = raw_server(answer, listen_first)
    provider = make_provider(base_url=f"{scheme}://127.0.0.1:{port}/", credentials={"api_key": SECRET, **credentials},
                             configuration={"timeout": 3, "retries": 0, "backoff": 0})

    with pytest.raises(errors.ProviderError) as caught:
        call(provider)

    error = caught.value
    said = f"{error} {error.args!r} {error.provider_message}"
    assert SECRET not in said, said
    assert "[REDACTED]" in said  # the fault's text is kept, masked: not dropped
    row = IntegrationLog.objects.filter(integration=provider).exclude(error_message="").latest("started_at")
    assert SECRET not in row.error_message and row.error_message
    superuser = django_user_model.objects.create_superuser("ops-admin", "ops@example.ly", "pw")
    admin = Client()
    admin.force_login(superuser)
    page = admin.get(reverse("admin:integrations_integrationlog_change", args=[row.pk]))
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
