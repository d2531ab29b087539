"""Benchmark: the S3 transport's cost, N PutObject+GetObject pairs traced against the same N bare.

    .venv/bin/python bench/transport_s3.py [--calls 300] [--size 1024] [--rounds 5]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at) and serves a real S3 server (moto's) on a local port from a child process, so that its
work does not share our interpreter lock. Each round puts and gets N objects through a bare boto3
client (botocore's own send) and through `S3Client`'s traced one (our send through the checked
`requests` session, a log row and a counter update per call); prints the medians, their ratio and
the overhead per call in µs.
"""

import argparse
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
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"s3bench{os.getpid()}")
_VAR = tempfile.mkdtemp(prefix="eishro-s3-bench-")
os.environ["EISHRO_VAR_DIR"] = _VAR

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

BUCKET = "eishro-bench"


def serve(pipe):
    """The child process: a moto S3 server until terminated, telling the parent its port."""
    import logging
    import threading

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would cost the server

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    pipe.send(server.get_host_and_port()[1])
    pipe.close()
    threading.Event().wait()


def run(client, calls, payload):
    t0 = time.perf_counter()
    for i in range(calls):
        client.put_object(Bucket=BUCKET, Key=f"bench/{i}", Body=payload)
        assert client.get_object(Bucket=BUCKET, Key=f"bench/{i}")["Body"].read() == payload
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="PutObject+GetObject pairs per run")
    parser.add_argument("--size", type=int, default=1024, help="bytes per object")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sender,), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the S3 server did not start")
        url = f"http://127.0.0.1:{receiver.recv()}"
        return measure(url, args)
    finally:
        server.terminate()
        server.join(10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(_VAR, ignore_errors=True)


def measure(url, args):
    import boto3

    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from integrations.transports.s3 import S3Client, new_client

    setup = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    # moto refuses R2's "auto" region when creating a bucket.
    boto3.client("s3", region_name="us-east-1", endpoint_url=url, **setup).create_bucket(Bucket=BUCKET)
    provider = ExternalIntegration.objects.create(
        kind=Kind.STORAGE, code="r2", name="bench-r2", display_name="R2 (bench)", base_url=url,
        configuration={"bucket": BUCKET}, credentials={"access_key_id": "AKIABENCH0000001", "secret_access_key": "s"})
    bare, traced = new_client(provider), S3Client(provider).client
    payload = os.urandom(args.size)
    run(bare, 20, payload), run(traced, 20, payload)  # warm: pools, models, the database
    IntegrationLog.objects.all().delete()

    print(f"database {connection.vendor}; {args.calls} PutObject+GetObject pairs of {args.size} bytes, "
          f"{args.rounds} rounds (median shown)")
    figures = {"bare": [], "traced": []}
    for r in range(args.rounds):
        order = (("bare", bare), ("traced", traced))
        for kind, client in order if r % 2 == 0 else order[::-1]:  # neither always runs first
            figures[kind].append(run(client, args.calls, payload))
        print(f"round {r + 1}: bare {figures['bare'][-1]:.3f} s, traced {figures['traced'][-1]:.3f} s")
    logged = IntegrationLog.objects.filter(integration=provider).count()
    expected = 2 * args.calls * args.rounds
    bare_s, traced_s = statistics.median(figures["bare"]), statistics.median(figures["traced"])
    # Each round's two runs share the machine's load of the moment: their ratio is the steadier figure.
    ratio = statistics.median(t / b for b, t in zip(figures["bare"], figures["traced"], strict=True))
    calls = 2 * args.calls
    print(f"RESULT bare {bare_s / calls * 1e6:.0f} µs/call, traced {traced_s / calls * 1e6:.0f} µs/call; "
          f"ratio {ratio:.2f} (median of the rounds'); overhead {(traced_s - bare_s) / calls * 1e6:.0f} µs/call")
    print(f"RESULT log rows {logged} for {expected} traced calls")
    return 0 if logged == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
