"""Benchmark: polling 100,000 open SMM orders on 10 panels whose answers take 150 ms (issue 12, point 17).

    .venv/bin/python bench/smm_poll_scale.py [--orders 100000] [--panels 10] [--latency-ms 150] [--rounds 3]

Each simulated panel runs in a process of its own (see smm_common and serve_each) and sleeps `--latency-ms` before
each answer (the sandbox's latency fault). Each round polls every panel at once, one poll per panel
on its own thread and database connection, as the beat job's one task per provider runs them, and
prints:

- wall time ÷ the calls' own latency: the time one panel's ceil(N/panels/100) calls take made back
  to back with bare `requests` (measured on one panel right before the round; the 150 ms plus the
  simulator's own work) — target ≤ 1.1; and ÷ the nominal calls × latency;
- the worker's memory growth: its peak resident set during the round (VmHWM, reset before the
  round) less its resident set before it — target ≤ 100 MB. The poll streams ids a page at a time;
  it never holds 100,000 model instances.
"""

import argparse
import math
import os
import statistics
import threading
import time

from smm_common import Environment, QueryCounter, serve


def serve_each(count):
    """`count` simulator processes more, one per panel: ten panels are ten remote servers. One
    process answering all ten at once would be bounded by its own interpreter lock (its work per
    call times ten calls in flight exceeds one core), which would measure the simulator, not us."""
    import multiprocessing

    from django.db import connection

    connection.close()  # the children open their own connections
    servers, ports = [], []
    for _ in range(count):
        receiver, sender = multiprocessing.Pipe(duplex=False)
        server = multiprocessing.get_context("fork").Process(target=serve, args=(sender,), daemon=True)
        server.start()
        if not receiver.poll(30):
            raise SystemExit("a sandbox server did not start")
        servers.append(server)
        ports.append(receiver.recv())
    return servers, ports


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids, children=False):
    """User + system CPU seconds used so far by these processes (those gone or not ours to read are
    skipped); with `children`, also by their children that have ended (PostgreSQL's backends of
    closed connections, counted in the postmaster's)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if children:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / TICK


def postgres_pids():
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() in ("postgres", "postmaster"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy (all cores, everyone's processes)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait


class CpuMeter:
    """CPU seconds of a round, split between the poll (this process), the simulators, PostgreSQL
    (every backend, the simulators' included) and the rest of the machine (other people's work)."""

    def __init__(self, servers):
        self.servers = [s.pid for s in servers]

    def sample(self):
        return {"poll": cpu_seconds([os.getpid()]), "simulators": cpu_seconds(self.servers),
                "postgresql": cpu_seconds(postgres_pids(), children=True), "machine": machine_busy_seconds()}

    def __enter__(self):
        self.before = self.sample()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        after = self.sample()
        self.wall = time.perf_counter() - self.t0
        self.used = {k: after[k] - self.before[k] for k in after}
        self.used["others"] = self.used["machine"] - sum(self.used[k] for k in ("poll", "simulators", "postgresql"))

    def __str__(self):
        cores = os.cpu_count()
        return (f"CPU s: poll {self.used['poll']:.1f}, simulators {self.used['simulators']:.1f}, PostgreSQL "
                f"{self.used['postgresql']:.1f}, other processes {self.used['others']:.1f}; machine busy "
                f"{self.used['machine'] / (self.wall * cores):.0%} of {cores} cores")


def rss_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # Linux ≥ 4.0: VmHWM starts again from the current resident set


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--panels", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with Environment() as env:
        import requests
        from django.db import connection

        from integrations.models import IntegrationLog
        from integrations.sandbox import set_fault
        from smm.models import SandboxPanel, SandboxPanelOrder, SMMOrder, SMMService
        from smm.polling import poll_orders
        from smm.providers import create_provider

        started = time.perf_counter()
        servers, ports = serve_each(args.panels)
        codes = [f"scale{i}" for i in range(args.panels)]
        urls = {code: f"http://127.0.0.1:{port}/sandbox/smm/{code}/api/v2"
                for code, port in zip(codes, ports, strict=True)}
        providers, ids = {}, {}
        for i, code in enumerate(codes):
            # A slow clock: every order stays open, so each round polls all N.
            panel = SandboxPanel.objects.create(code=code, api_key=f"sandbox-{code}-key", step_seconds=86400,
                                                catalogue_size=10, balance=10**9)
            provider = create_provider(owner=env.merchant, name=code, display_name=code,
                                       api_url=urls[code], api_key=f"sandbox-{code}-key", code="panel_v2")
            service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                                max_quantity=10**6)
            share = args.orders // args.panels + (1 if i < args.orders % args.panels else 0)
            panel_orders = SandboxPanelOrder.objects.bulk_create(
                [SandboxPanelOrder(panel=panel, service="1", link=f"https://instagram.com/p/{n}", quantity=1000,
                                   charge="0.9", start_count=n) for n in range(share)], batch_size=2000)
            SMMOrder.objects.bulk_create(
                [SMMOrder(owner=env.merchant, provider=provider, service=service, link=o.link, quantity=1000,
                          status="pending", external_order_id=str(o.pk)) for o in panel_orders], batch_size=2000)
            providers[code], ids[code] = provider, [str(o.pk) for o in panel_orders]
            set_fault("smm", code, latency_ms=args.latency_ms)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them on a live database
        calls_per_panel = {c: math.ceil(len(ids[c]) / 100) for c in codes}
        print(f"{args.orders:,} open orders over {args.panels} simulated panels answering after {args.latency_ms} ms, "
              f"database {connection.vendor}; set up in {time.perf_counter() - started:.0f} s", flush=True)

        session = requests.Session()

        def bare(code, session=session):
            """One panel's calls back to back, bare: what the calls themselves take."""
            t0 = time.perf_counter()
            for start in range(0, len(ids[code]), 100):
                session.post(urls[code], data={"key": f"sandbox-{code}-key", "action": "status",
                                                        "orders": ",".join(ids[code][start:start + 100])}).json()
            return time.perf_counter() - t0

        def bare_all():
            """Every panel's calls bare, all panels at once (a thread and session each): what the
            machine itself makes of ten streams of calls, with the ten simulators on the same CPUs."""
            threads = [threading.Thread(target=bare, args=(c, requests.Session())) for c in codes]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - t0

        for code in codes:  # warm-up: each server's URL conf, application and database connection
            session.post(urls[code], data={"key": f"sandbox-{code}-key", "action": "status",
                                           "orders": ",".join(ids[code][:100])}).json()
        longest = max(codes, key=lambda c: calls_per_panel[c])
        nominal = calls_per_panel[longest] * args.latency_ms / 1000
        ratios, nominal_ratios, growths, concurrent_ratios = [], [], [], []
        for n in range(1, args.rounds + 1):
            t_bare = bare(longest)
            with CpuMeter(servers) as bare_cpu:
                t_bare_all = bare_all()
            concurrent_ratios.append(t_bare_all / t_bare)
            results, counters, errors = {}, [], []

            def poll(code, results=results, counters=counters, errors=errors):
                try:
                    with QueryCounter() as counter:
                        results[code] = poll_orders(providers[code])
                    counters.append(counter)
                except Exception as exc:  # noqa: BLE001 - reported below: a failed poll fails the benchmark
                    errors.append((code, exc))
                finally:
                    connection.close()

            logs_before = IntegrationLog.objects.count()
            connection.close()
            before = rss_mb("VmRSS")
            reset_peak()
            with CpuMeter(servers) as poll_cpu:
                t0 = time.perf_counter()
                threads = [threading.Thread(target=poll, args=(c,), name=f"poll-{c}") for c in codes]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
            growth = rss_mb("VmHWM") - before
            if errors:
                raise SystemExit(f"round {n}: polls failed: {errors}")
            calls = IntegrationLog.objects.count() - logs_before
            assert calls == sum(calls_per_panel.values()) == sum(r["calls"] for r in results.values()), calls
            assert sum(r["checked"] for r in results.values()) == args.orders
            queries = sum(c.count for c in counters)
            ratios.append(wall / t_bare)
            nominal_ratios.append(wall / nominal)
            growths.append(growth)
            print(f"round {n}: {calls} calls ({calls_per_panel[longest]} per panel) in {wall:.2f} s; one panel's "
                  f"calls bare, back to back {t_bare:.2f} s ({t_bare / calls_per_panel[longest] * 1000:.0f} ms a "
                  f"call); wall ÷ bare {wall / t_bare:.2f}, ÷ {calls_per_panel[longest]} × {args.latency_ms} ms "
                  f"{wall / nominal:.2f}; all panels' calls bare at once {t_bare_all:.2f} s (÷ one panel's "
                  f"{t_bare_all / t_bare:.2f}, poll ÷ it {wall / t_bare_all:.2f}); memory growth {growth:.1f} MB; "
                  f"SQL queries {queries} ({queries / calls:.2f} per call)\n  the poll's {poll_cpu}\n"
                  f"  the bare calls' {bare_cpu}", flush=True)
        assert SMMOrder.objects.filter(status="pending").count() == args.orders
        for server in servers:
            server.terminate()
            server.join(10)
        ratio, growth = statistics.median(ratios), max(growths)
        print(f"RESULT wall time ÷ the calls' own latency (median of {args.rounds}): {ratio:.2f} "
              f"(÷ nominal {statistics.median(nominal_ratios):.2f}) (target ≤ 1.1); the same calls made bare by "
              f"{args.panels} threads at once ÷ one panel's alone: {statistics.median(concurrent_ratios):.2f}; "
              f"worst memory growth {growth:.1f} MB (target ≤ 100)")
    return 0 if ratio <= 1.1 and growth <= 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
