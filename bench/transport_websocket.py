"""Benchmark: N messages received through the traced WebSocket consumer against a bare websockets
receive loop, from the same local server.

    .venv/bin/python bench/transport_websocket.py [--messages 2000] [--rounds 5]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at). The server runs in a child process (a real provider is remote: its work must not share
our interpreter lock) and sends N tracking events on every connection. Each round times the bare
loop and the consumer (one "ws.connect", N "ws.message" and one "ws.close" log rows) back to back;
prints the medians, their ratio and the consumer's overhead per message.
"""

import argparse
import json
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
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"wsbench{os.getpid()}")
VAR = tempfile.mkdtemp(prefix="eishro-ws-bench-")
os.environ["EISHRO_VAR_DIR"] = VAR  # a private file cache: test runs on this machine clear theirs

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402


def serve(pipe, messages):
    """The child process: a WebSocket server sending `messages` events on every connection."""
    from websockets.sync.server import serve as ws_serve

    events = [json.dumps({"tracking": f"LY{i:09d}", "status": "in_transit", "hub": "Tripoli",
                          "at": "2026-11-25T10:00:00Z", "note": "Departed sorting centre"}) for i in range(messages)]

    def handler(ws):
        for event in events:
            ws.send(event)

    with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        pipe.send(server.socket.getsockname()[1])
        pipe.close()
        server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    connection.close()
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sender, args.messages), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the WebSocket server did not start")
        url = f"ws://127.0.0.1:{receiver.recv()}/feed"
        return run(url, args)
    finally:
        server.terminate()
        server.join(10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(VAR, ignore_errors=True)


def run(url, args):
    from websockets.sync.client import connect

    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from integrations.transports.websocket import WebSocketConsumer

    integration = ExternalIntegration.objects.create(
        kind=Kind.SHIPPING, code="bench-ws", name="bench-ws", display_name="Tracking feed", base_url=url,
        credentials={"token": "tok_BENCH_FEED_123"}, configuration={"ws_auth": "none"},
    )
    n = args.messages
    bare, traced = [], []
    print(f"database {connection.vendor}; {n} messages a connection, {args.rounds} rounds (median shown)")
    for r in range(args.rounds):
        t0 = time.perf_counter()
        with connect(url, compression=None) as ws:
            received = sum(1 for _ in ws)
        bare.append(time.perf_counter() - t0)
        assert received == n, received

        seen = []
        t0 = time.perf_counter()
        received = WebSocketConsumer(integration, on_message=seen.append).run_once()
        traced.append(time.perf_counter() - t0)
        assert received == n == len(seen), received
        print(f"round {r + 1}: bare {bare[-1]:.3f} s, traced {traced[-1]:.3f} s")
    rows = IntegrationLog.objects.filter(integration=integration, operation="ws.message").count()
    assert rows == n * args.rounds, rows
    b, t = statistics.median(bare), statistics.median(traced)
    print(f"RESULT {n} messages: bare recv loop {b:.3f} s ({b / n * 1e6:.0f} µs/message); traced consumer {t:.3f} s "
          f"({t / n * 1e6:.0f} µs/message); ratio {t / b:.2f}; overhead {(t - b) / n * 1e6:.0f} µs/message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
