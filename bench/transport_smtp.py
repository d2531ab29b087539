"""Benchmark: N e-mails through the traced SMTP backend against Django's bare SMTP backend, to the
same local aiosmtpd server.

    .venv/bin/python bench/transport_smtp.py [--messages 500] [--rounds 5]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at). The server runs in a child process (a real relay is remote: its work must not share
our interpreter lock) and asks for a login. Each round sends the same N messages over one
connection with each backend, back to back (the traced one logs one "smtp.connect" and N
"smtp.send" rows); prints the medians, their ratio and the traced backend's overhead per message.
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"smtpbench{os.getpid()}")
VAR = tempfile.mkdtemp(prefix="eishro-smtp-bench-")
os.environ["EISHRO_VAR_DIR"] = VAR  # a private file cache: test runs on this machine clear theirs

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

USER, PASSWORD = "relay", "Relay-Bench-Pa55"


def serve(pipe):
    """The child process: an SMTP server that asks for a login and discards what it receives."""
    import logging

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import AuthResult

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    pipe.send(port)
    pipe.close()
    while True:
        time.sleep(3600)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    connection.close()
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sender,), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the SMTP server did not start")
        return run(receiver.recv(), args)
    finally:
        server.terminate()
        server.join(10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(VAR, ignore_errors=True)


def run(port, args):
    from django.core.mail import EmailMessage
    from django.core.mail.backends.smtp import EmailBackend

    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from integrations.transports.smtp import TracedEmailBackend

    integration = ExternalIntegration.objects.create(
        kind=Kind.EMAIL, code="bench-smtp", name="bench-smtp", display_name="Libya Post relay",
        base_url=f"smtp://127.0.0.1:{port}", credentials={"username": USER, "password": PASSWORD},
        configuration={"from_email": "noreply@eishro.ly"},
    )
    n = args.messages
    messages = [
        EmailMessage(f"Your parcel LY{i:09d} is on its way", "مرحبا،\n\nYour parcel left the Tripoli sorting "
                     "centre today and should reach you within two days.\n\nEISHRO\n" * 3,
                     "noreply@eishro.ly", [f"buyer{i}@example.ly"])
        for i in range(n)
    ]
    bare, traced = [], []
    print(f"database {connection.vendor}; {n} messages over one connection, {args.rounds} rounds (median shown)")
    for r in range(args.rounds):
        backend = EmailBackend(host="127.0.0.1", port=port, username=USER, password=PASSWORD, use_tls=False,
                               use_ssl=False, timeout=10)
        t0 = time.perf_counter()
        sent = backend.send_messages(messages)
        bare.append(time.perf_counter() - t0)
        assert sent == n, sent

        t0 = time.perf_counter()
        sent = TracedEmailBackend(integration).send_messages(messages)
        traced.append(time.perf_counter() - t0)
        assert sent == n, sent
        print(f"round {r + 1}: bare {bare[-1]:.3f} s, traced {traced[-1]:.3f} s")
    rows = IntegrationLog.objects.filter(integration=integration, operation="smtp.send", status="success").count()
    assert rows == n * args.rounds, rows
    b, t = statistics.median(bare), statistics.median(traced)
    print(f"RESULT {n} messages: bare Django backend {b:.3f} s ({b / n * 1e6:.0f} µs/message); traced backend "
          f"{t:.3f} s ({t / n * 1e6:.0f} µs/message); ratio {t / b:.2f}; overhead {(t - b) / n * 1e6:.0f} µs/message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
