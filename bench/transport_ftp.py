"""Benchmark: the FTP transport's cost, N store+retrieve pairs through `FtpClient` against the same N bare.

    .venv/bin/python bench/transport_ftp.py [--calls 300] [--size 1024] [--rounds 3]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at) and serves a real FTP server (pyftpdlib's) on a local port from a child process, so that
its work does not share our interpreter lock. Each round stores and retrieves N CSV files of
`--size` bytes on one connection through bare ftplib and through `FtpClient` (the checked
connection, a log row with the file redacted as text and a counter update per operation); prints
the medians, their ratio and the overhead per operation in µs.
"""

import argparse
import ftplib
import io
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("SANDBOX_ENABLED", "true")  # loopback destinations allowed
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"ftpbench{os.getpid()}")
_VAR = tempfile.mkdtemp(prefix="eishro-ftp-bench-")
os.environ["EISHRO_VAR_DIR"] = _VAR

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

USER, PASSWORD = "bench", "Ftp-Bench-Pa55"


def serve(pipe, root):
    """The child process: a pyftpdlib server on `root` until terminated, telling the parent its port."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, root, perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), handler)
    pipe.send(server.address[1])
    pipe.close()
    server.serve_forever()


def bare_pairs(ftp, calls, payload):
    t0 = time.perf_counter()
    for i in range(calls):
        ftp.storbinary(f"STOR bare-{i}.csv", io.BytesIO(payload))
        chunks = []
        ftp.retrbinary(f"RETR bare-{i}.csv", chunks.append)
        assert b"".join(chunks) == payload
    return time.perf_counter() - t0


def traced_pairs(client, calls, payload):
    t0 = time.perf_counter()
    for i in range(calls):
        client.store(f"traced-{i}.csv", payload)
        assert client.retrieve(f"traced-{i}.csv") == payload
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="store+retrieve pairs per run")
    parser.add_argument("--size", type=int, default=1024, help="bytes per file")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    root = tempfile.mkdtemp(prefix="eishro-ftp-bench-root-")
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sender, root), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the FTP server did not start")
        return measure(receiver.recv(), args)
    finally:
        server.terminate()
        server.join(10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(_VAR, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def measure(port, args):
    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from integrations.transports.ftp import FtpClient

    provider = ExternalIntegration.objects.create(
        kind=Kind.SHIPPING, code="ftp-bench", name="bench-ftp", display_name="FTP (bench)",
        base_url=f"ftp://127.0.0.1:{port}/", credentials={"username": USER, "password": PASSWORD})
    line = b"1042,Tripoli,4111111111111111,12.500,delivered\n"
    payload = (line * (args.size // len(line) + 1))[: args.size]
    bare = ftplib.FTP()  # noqa: S321 - plain FTP on loopback is what is measured
    bare.connect("127.0.0.1", port, timeout=10)
    bare.login(USER, PASSWORD)
    with FtpClient(provider) as traced:
        bare_pairs(bare, 20, payload), traced_pairs(traced, 20, payload)  # warm: the database, the disk
        IntegrationLog.objects.all().delete()

        print(f"database {connection.vendor}; {args.calls} store+retrieve pairs of {args.size} bytes, "
              f"{args.rounds} rounds (median shown)")
        figures = {"bare": [], "traced": []}
        for r in range(args.rounds):
            figures["bare"].append(bare_pairs(bare, args.calls, payload))
            figures["traced"].append(traced_pairs(traced, args.calls, payload))
            print(f"round {r + 1}: bare {figures['bare'][-1]:.3f} s, traced {figures['traced'][-1]:.3f} s")
    bare.quit()
    rows = IntegrationLog.objects.filter(integration=provider)
    logged, expected = rows.count(), 2 * args.calls * args.rounds
    clean = not rows.filter(response_body__contains="4111111111111111").exists()
    bare_s, traced_s = statistics.median(figures["bare"]), statistics.median(figures["traced"])
    calls = 2 * args.calls
    print(f"RESULT bare {bare_s / calls * 1e6:.0f} µs/op, traced {traced_s / calls * 1e6:.0f} µs/op; "
          f"ratio {traced_s / bare_s:.2f}; overhead {(traced_s - bare_s) / calls * 1e6:.0f} µs/op")
    print(f"RESULT log rows {logged} for {expected} traced operations; card number in a row: "
          f"{'no' if clean else 'YES'}")
    return 0 if logged == expected and clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
