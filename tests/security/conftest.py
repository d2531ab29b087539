"""Fixtures of the security suites: production's address policy, a resolver with names that point
inside, loopback listeners that count who reached them, and a record of every connection opened."""

import ipaddress
import socket
import threading
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

# Names a real resolver could answer this way (an attacker's DNS, a cloud's internal zone). The
# real resolver keeps every other name; a trailing dot means the same name, as in DNS.
FAKE_DNS = {
    "localtest.me": ["127.0.0.1"],
    "loopback.attacker.example": ["127.0.0.1", "::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "internal.attacker.example": ["10.0.0.5"],
    "mixed.attacker.example": ["93.184.215.14", "127.0.0.1"],  # one private answer among public ones
    "v6loopback.attacker.example": ["::1"],
    "public.example.com": ["93.184.215.14"],
}


@pytest.fixture
def production(settings):
    """What a deployment runs with: private destinations refused, no sandbox."""
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    settings.SANDBOX_ENABLED = False
    return settings


@pytest.fixture
def fake_dns(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        answers = FAKE_DNS.get((name or "").rstrip(".").lower())
        if answers is None:
            return real(host, port, family, type, proto, flags)
        infos = []
        for address in answers:
            ip = ipaddress.ip_address(address)
            fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            if family in (0, fam):
                sockaddr = (address, int(port or 0), 0, 0) if ip.version == 6 else (address, int(port or 0))
                infos.append((fam, type or socket.SOCK_STREAM, proto or socket.IPPROTO_TCP, "", sockaddr))
        if not infos:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return FAKE_DNS


class Listener:
    """A TCP listener on 127.0.0.1 and [::1] on one port, counting the connections it accepts."""

    def __init__(self):
        self.accepted = []
        self.sockets = []
        for _attempt in range(20):
            v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            v4.bind(("127.0.0.1", 0))
            self.port = v4.getsockname()[1]
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                v6.bind(("::1", self.port))
            except OSError:
                v4.close()
                v6.close()
                continue
            self.sockets = [v4, v6]
            break
        else:  # pragma: no cover - no free port pair
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        self._stop = threading.Event()
        self.threads = []
        for sock in self.sockets:
            sock.listen(16)
            sock.settimeout(0.05)
            thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _accept(self, sock):
        while not self._stop.is_set():
            try:
                conn, address = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(address)
            conn.close()

    def close(self):
        self._stop.set()
        for thread in self.threads:
            thread.join(2)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _infra_ports():
    """Our own cache and broker (Redis in CI): their connections are not the provider call's."""
    ports = set()
    for url in (getattr(django_settings, "REDIS_URL", "") or "", getattr(django_settings, "CELERY_BROKER_URL", "")):
        try:
            parts = urlsplit(url)
            if parts.scheme.startswith("redis") and parts.port:
                ports.add(parts.port)
        except ValueError:
            pass
    return ports


@pytest.fixture
def connections(monkeypatch):
    """Every outgoing TCP connection attempted (address, port), our own Redis left out."""
    attempts = []
    infra = _infra_ports()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def note(address):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] not in infra:
            attempts.append((address[0], address[1]))

    def connect(self, address):
        note(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        note(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.2 s per user created; these tests check behaviour.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
