"""Benchmark: one health round of 50 providers, 10 of them hanging until their timeout.

    .venv/bin/python bench/monitoring_round.py [--providers 50] [--hanging 10] [--timeout 2] [--rounds 3]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL
points at), serves the sandbox simulators on a local port from a threaded WSGI server in a thread,
and prints the round time as a ratio to the longest timeout (target ≤ 1.2) and the database
queries per round (the round's own plus those of the probe threads: ProviderClient's log row and
counter update per call).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("SANDBOX_ENABLED", "true")
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"bench{os.getpid()}")
# A private var directory: the file cache holding the injected faults and the round lock is not
# shared with (and cleared by) test runs on the same machine.
_VAR = tempfile.mkdtemp(prefix="eishro-bench-")
os.environ["EISHRO_VAR_DIR"] = _VAR

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402

from integrations.adapters import Adapter, HealthCheck, ProviderMeta  # noqa: E402

TIMEOUT = 2.0


class BenchProbe(Adapter):
    """The base class's HTTP health check against the generic sandbox health endpoint."""

    meta = ProviderMeta(label="Benchmark probe", kind="", health=HealthCheck(path="health", timeout=TIMEOUT))


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Server(ThreadedWSGIServer):
    # socketserver's listen backlog is 5 (Django's 10): 50 simultaneous first connections would see
    # dropped SYNs and a one-second retransmit, which measures the toy server, not the round.
    request_queue_size = 128


class QueryCounter:
    """An execute wrapper that counts the queries of the connection it is installed on."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def count_probe_queries(health):
    """Make every probe count its queries; returns a dict whose "counts" list, replaced before each
    round, gets one count per probe. Django's connections (and their execute wrappers) are per
    thread, so a wrapper installed by the round does not see the probe threads' queries: each probe
    installs its own."""
    state = {"counts": []}
    original = health.probe

    def probe(integration, gate=None):
        counts, counter = state["counts"], QueryCounter()
        try:
            with connection.execute_wrapper(counter):
                return original(integration, gate)
        finally:
            counts.append(counter.count)

    health.probe = probe
    return state


def serve():
    server = Server(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--hanging", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    BenchProbe.meta = ProviderMeta(
        label="Benchmark probe", kind="", health=HealthCheck(path="health", timeout=args.timeout)
    )

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    config = apps.get_app_config("monitoring")
    config.adapters = {**config.adapters, "bench_probe": f"{__name__}.BenchProbe"}
    server = serve()
    base = f"http://127.0.0.1:{server.server_address[1]}/sandbox/generic"
    try:
        from django.core.cache import cache

        from integrations.models import ExternalIntegration, IntegrationLog
        from integrations.sandbox import clear_fault, set_fault
        from monitoring import health
        from monitoring.models import HealthCheck as Check

        cache.delete(health.LOCK_KEY)
        probe_counts = count_probe_queries(health)
        for i in range(args.providers):
            ExternalIntegration.objects.create(
                kind="analytics",
                code="bench_probe",
                name=f"bench-{i}",
                display_name=f"Bench {i}",
                base_url=f"{base}/bench-{i}/",
            )
        for i in range(args.hanging):
            set_fault("generic", f"bench-{i}", hang_s=args.timeout + 3)

        # Warm the simulator up (URL conf, first connections): that cost belongs to no round.
        import requests

        requests.get(f"{base}/warmup/health", timeout=10)
        print(
            f"{args.providers} providers, {args.hanging} hanging (> {args.timeout:g} s timeout), "
            f"database {connection.vendor}, {args.rounds} rounds"
        )
        ratios, queries = [], []
        for n in range(1, args.rounds + 1):
            logs_before = IntegrationLog.objects.count()
            probe_counts["counts"] = []
            own = QueryCounter()
            t0 = time.perf_counter()
            with connection.execute_wrapper(own):
                result = health.run_round()
            wall = time.perf_counter() - t0
            # Summed now, as the round itself did: a probe still running past its deadline is not counted.
            probe_queries = sum(probe_counts["counts"])
            total_queries = own.count + probe_queries
            assert not result.skipped
            ratio = wall / result.longest_timeout
            ratios.append(ratio)
            queries.append(total_queries)
            counts = {}
            for status in result.statuses.values():
                counts[status] = counts.get(status, 0) + 1
            print(
                f"round {n}: {wall:.3f} s (probing {result.duration:.3f} s), longest timeout "
                f"{result.longest_timeout:g} s, ratio {ratio:.2f}, {total_queries} queries "
                f"({own.count} by the round itself, {probe_queries} in the "
                f"probe threads = {probe_queries / args.providers:.1f} per provider), "
                f"{IntegrationLog.objects.count() - logs_before} log rows, statuses {counts}"
            )
        print(
            f"RESULT median round time / longest timeout = {statistics.median(ratios):.2f} (target <= 1.2); "
            f"median queries per round = {statistics.median(queries):.0f}; "
            f"health checks stored = {Check.objects.count()}"
        )
        for i in range(args.hanging):
            clear_fault("generic", f"bench-{i}")
    finally:
        server.shutdown()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(_VAR, ignore_errors=True)
    return 0 if statistics.median(ratios) <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
