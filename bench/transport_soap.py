"""Benchmark: the SOAP transport's cost, N operations through `SoapClient` against the same N bare.

    .venv/bin/python bench/transport_soap.py [--calls 500] [--rounds 3]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at) and serves a canned SOAP endpoint on a local port from a child process, so that its
work does not share our interpreter lock. Each round calls the test suite's payment service
(`Initiate`, with a password, a PIN and a card number in the envelope) N times through a bare zeep
client on its own session and through `SoapClient` (the traced, checked session: a redacted log
row and a counter update per call, the result turned into plain Python); prints the medians, their
ratio and the overhead per call in µs.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("SANDBOX_ENABLED", "true")  # loopback destinations allowed
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"soapbench{os.getpid()}")
_VAR = tempfile.mkdtemp(prefix="eishro-soap-bench-")
os.environ["EISHRO_VAR_DIR"] = _VAR

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

WSDL = ROOT / "tests" / "integrations" / "transports" / "payment_service.wsdl"
ANSWER = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<InitiateResponse xmlns="urn:eishro:test:payments"><Reference>REF-1</Reference></InitiateResponse>'
    b"</soap:Body></soap:Envelope>"
)
PARAMS = {"MerchantId": "M1", "Password": "pw-Right-7781", "Pin": "4821", "Amount": Decimal("12.500"),
          "CardNumber": "4111111111111111"}


def serve(pipe):
    """The child process: answer every POST with the canned envelope until terminated."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a provider's server would
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    pipe.send(server.server_address[1])
    pipe.close()
    server.serve_forever()


def run(call, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="Initiate calls per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sender,), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the SOAP server did not start")
        url = f"http://127.0.0.1:{receiver.recv()}/soap"
        return measure(url, args)
    finally:
        server.terminate()
        server.join(10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(_VAR, ignore_errors=True)


def measure(url, args):
    import requests
    import zeep

    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from integrations.transports.soap import SoapClient

    provider = ExternalIntegration.objects.create(
        kind=Kind.PAYMENT, code="soap-bench", name="bench-soap", display_name="SOAP (bench)", base_url=url,
        credentials={"api_key": PARAMS["Password"]})
    bare_client = zeep.Client(str(WSDL), transport=zeep.transports.Transport(session=requests.Session()))
    bare_service = bare_client.create_service("{urn:eishro:test:payments}PaymentBinding", url)
    traced = SoapClient(provider, WSDL)
    calls = {"bare": lambda: bare_service.Initiate(**PARAMS), "traced": lambda: traced.call("Initiate", **PARAMS)}
    assert traced.call("Initiate", **PARAMS) == {"Reference": "REF-1", "Echo": None}
    run(calls["bare"], 20), run(calls["traced"], 20)  # warm: pools, the database
    IntegrationLog.objects.all().delete()

    print(f"database {connection.vendor}; {args.calls} Initiate calls, {args.rounds} rounds (median shown)")
    figures = {"bare": [], "traced": []}
    for r in range(args.rounds):
        for kind in ("bare", "traced"):
            figures[kind].append(run(calls[kind], args.calls))
        print(f"round {r + 1}: bare {figures['bare'][-1]:.3f} s, traced {figures['traced'][-1]:.3f} s")
    rows = IntegrationLog.objects.filter(integration=provider)
    logged, expected = rows.count(), args.calls * args.rounds
    clean = not rows.filter(request_body__contains=PARAMS["Password"]).exists()
    bare_s, traced_s = statistics.median(figures["bare"]), statistics.median(figures["traced"])
    print(f"RESULT bare {bare_s / args.calls * 1e6:.0f} µs/call, traced {traced_s / args.calls * 1e6:.0f} µs/call; "
          f"ratio {traced_s / bare_s:.2f}; overhead {(traced_s - bare_s) / args.calls * 1e6:.0f} µs/call")
    print(f"RESULT log rows {logged} for {expected} traced calls; password in a row: {'no' if clean else 'YES'}")
    return 0 if logged == expected and clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
