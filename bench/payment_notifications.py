"""Benchmark: signed Moamalat notifications per second through our real webhook, served by gunicorn on
two cores, as a ratio to a bare Django view on the same server; and how many were lost or applied twice.

    .venv/bin/python bench/payment_notifications.py [--payments 2000] [--duplicates 200] [--concurrency 8]
                                                    [--time-limit 120] [--eager]

Sets Django up on a throwaway test database (created and destroyed here, on whatever DATABASE_URL points
at), writes `--payments` pending card payments on a Moamalat row, then starts gunicorn (two sync workers,
the project's settings with DEBUG off, bench/payment_wsgi.py adding a bare view) on a loopback port. A
second process sends, from `--concurrency` connections, one approval notification per payment plus
`--duplicates` exact copies of some of them (a gateway retrying), shuffled: first the same bodies to the
bare view (`/bench/bare/`: reads the body, answers Moamalat's JSON), then to /webhooks/payment/moamalat/.
As in production, the receiver verifies, stores and de-duplicates each notification and answers; a real
Celery worker (on the configured broker, sharing the same two cores) applies them, each sale confirmed
first by FilterTransactions (payments.providers.moamalat), answered by the sandbox's simulated gateway
served by a gunicorn of its own on loopback (the sales are recorded there beforehand). Two rates:
acknowledged (the sender's requests per second) and settled (notifications from the first send until the
worker has processed the last one). `--eager` applies each inside its request instead (no worker): the
receiver's whole work, the worst case of its answer time. Bounded in count and time.

Rates move with whatever else runs on the machine, so the bare view is timed before and after, the load
average is printed, and the CPU time of the serving processes (/proc: our gunicorn, the worker, the
PostgreSQL backends; the simulated gateway apart) is given per request: bare ÷ notification is the ratio
the rates would show on an otherwise idle machine, the sender aside.

Prints the rates, their ratios to the bare view (target >= 0.5), the events lost (an answer that was not
200, or a payment whose notification was never stored: target 0), those still waiting for the worker when
the time limit ended, and the events applied twice (a second move to paid, or more processed events than
payments: target 0). The worker's pool is prefork by default: with the threads pool on Redis a worker
took two messages about every ten seconds here (`--pool threads` shows it).
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"paynotebench{os.getpid()}")
VAR = tempfile.mkdtemp(prefix="eishro-paynote-bench-")
os.environ["EISHRO_VAR_DIR"] = VAR  # a private file cache: test runs on this machine clear theirs

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

WEBHOOK = "/webhooks/payment/moamalat/"
BARE = "/bench/bare/"


def database_url():
    """The test database as a DATABASE_URL for gunicorn's processes."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "")
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{settings.get('PORT') or 5432}/{settings['NAME']}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(count, api_base):
    """A Moamalat row (its server API at `api_base`), `count` pending card payments on it, each sale
    approved at the simulated gateway, and one signed approval body for each."""
    from django.contrib.auth import get_user_model

    from integrations.models import ExternalIntegration, Kind
    from payments.apps import DEMO_MOAMALAT
    from payments.moamalat_hash import NOTIFICATION_FIELDS, secure_hash
    from payments.models import Payment, new_reference
    from payments.providers.moamalat import TIMEZONE

    merchant = get_user_model().objects.create_user("bench-merchant")
    from payments.sandbox import moamalat as gateway

    row = ExternalIntegration.objects.create(kind=Kind.PAYMENT, code="moamalat", name="moamalat", base_url=api_base,
                                             credentials=DEMO_MOAMALAT, configuration={"environment": "test"})
    payments = [Payment(owner=merchant, amount="10.000", currency="LYD", method="card_credit", integration=row,
                        status="pending", next_step="lightbox", reference=new_reference()) for _ in range(count)]
    Payment.objects.bulk_create(payments, batch_size=1000)
    from zoneinfo import ZoneInfo

    when = timezone.now().astimezone(ZoneInfo(TIMEZONE)).strftime("%Y%m%d%H%M%S")
    bodies = []
    local = timezone.now().astimezone(ZoneInfo(TIMEZONE)).isoformat()
    for n, payment in enumerate(payments):
        # The sale as the gateway holds it: the worker confirms each approval by FilterTransactions.
        gateway._save({"TransactionId": str(5_000_000 + n), "RRN": f"2246{5_000_000 + n:08d}", "STAN": f"{n:06d}",
                       "TransType": "Sale", "Status": "Approved", "ActionCode": "00", "AmountTrxn": 10000,
                       "Currency": "LYD", "CardNo": "411111XXXXXX1111", "MerchantReference": payment.reference,
                       "MerchantId": DEMO_MOAMALAT["merchant_id"], "TerminalId": DEMO_MOAMALAT["terminal_id"],
                       "TxnDateTime": local, "Refunded": 0, "OriginalTxnId": ""})
        body = {"MerchantId": DEMO_MOAMALAT["merchant_id"], "TerminalId": DEMO_MOAMALAT["terminal_id"],
                "DateTimeLocalTrxn": when, "TxnType": 1, "Message": "Approved", "PaidThrough": "Card",
                "SystemReference": str(5_000_000 + n), "NetworkReference": f"2246{5_000_000 + n:08d}",
                "MerchantReference": payment.reference, "Amount": "10000", "Currency": "434",
                "PayerAccount": "411111XXXXXX1111", "PayerName": "BENCH", "ActionCode": "00"}
        body["SecureHash"] = secure_hash(DEMO_MOAMALAT["notification_key"],
                                         {n: body[n] for n in NOTIFICATION_FIELDS})
        bodies.append(json.dumps(body).encode())
    return row, bodies


def server_env(eager, sandbox=False):
    # Our processes call the simulated gateway on loopback (PROVIDER_URL_ALLOW_PRIVATE).
    return dict(os.environ, DATABASE_URL=database_url(), DEBUG="0", SECURE_SSL_REDIRECT="0",
                SANDBOX_ENABLED="1" if sandbox else "0", PROVIDER_URL_ALLOW_PRIVATE="1",
                ALLOWED_HOSTS="127.0.0.1", CELERY_TASK_ALWAYS_EAGER="1" if eager else "0", STATIC_MANIFEST="0",
                C_FORCE_ROOT="1")


def start_worker(pool):
    """A real Celery worker (two threads or two processes) on the configured broker."""
    log = open(Path(VAR) / "worker.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "eishro.celery", "worker", f"--pool={pool}", "--concurrency=2",
         "-l", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle", "-Q", "celery"],
        cwd=ROOT, env=server_env(False), stdout=log, stderr=subprocess.STDOUT)
    time.sleep(3)
    if proc.poll() is not None:
        raise SystemExit(f"the worker exited:\n{(Path(VAR) / 'worker.log').read_text()[-3000:]}")
    return proc


def start_gunicorn(port, eager, sandbox=False):
    """Our server (two sync workers), or with `sandbox` the simulated gateway in processes of its own
    (as the real one runs on other machines: its work is not ours, and is counted apart)."""
    env = server_env(eager, sandbox)
    log = open(Path(VAR) / ("gateway.log" if sandbox else "gunicorn.log"), "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "bench.payment_wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", "2", "--backlog", "512", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{(Path(VAR) / 'gunicorn.log').read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start in 60 s")


def send_all(url, bodies, concurrency, time_limit, pipe):
    """The sender process: POST every body from `concurrency` connections; report (seconds, status counts,
    bodies not sent before the time limit)."""
    import threading
    from collections import Counter

    import requests

    queue = list(enumerate(bodies))
    lock = threading.Lock()
    statuses = Counter()
    start = time.perf_counter()
    deadline = start + time_limit

    def work():
        session = requests.Session()
        while time.perf_counter() < deadline:
            with lock:
                if not queue:
                    return
                _i, body = queue.pop()
            try:
                answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
                status = answer.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    pipe.send((time.perf_counter() - start, dict(statuses), len(queue)))
    pipe.close()


def run_sender(url, bodies, concurrency, time_limit):
    receiver, sender = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("fork").Process(target=send_all,
                                                       args=(url, bodies, concurrency, time_limit, sender))
    proc.start()
    if not receiver.poll(time_limit + 60):
        proc.terminate()
        raise SystemExit("the sender did not finish")
    result = receiver.recv()
    proc.join(10)
    return result


_TICK = os.sysconf("SC_CLK_TCK")


def family(pid):
    """`pid` and every process under it (gunicorn's workers, the Celery pool)."""
    pids, todo = [pid], [pid]
    while todo:
        try:
            children = Path(f"/proc/{todo.pop()}/task").glob("*/children")
            found = [int(c) for f in children for c in f.read_text().split()]
        except OSError:
            found = []
        pids += found
        todo += found
    return pids


def database_pids():
    """The PostgreSQL backends serving the throwaway database (its work is the server's too)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return [pid for (pid,) in cursor.fetchall()]


def cpu_seconds(pids):
    """{pid: user + system CPU seconds} from /proc (a process gone meanwhile is left out)."""
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return spent


class CpuMeter:
    """CPU time serving processes spend in a phase (a process and its children, or with `root` None
    PostgreSQL's backends): unlike the rates, it does not move when other work shares the machine."""

    def __init__(self, root):
        self.root = root

    def _read(self):
        return cpu_seconds(family(self.root.pid) if self.root is not None else database_pids())

    def __enter__(self):
        self.before = self._read()
        return self

    def __exit__(self, *exc):
        after = self._read()
        self.seconds = sum(t - self.before.get(pid, 0.0) for pid, t in after.items())


def wait_settled(row, started, time_limit):
    """Seconds from `started` until no stored event of the row waits for the worker (bounded)."""
    from integrations.models import WebhookEvent

    deadline = time.perf_counter() + time_limit
    while time.perf_counter() < deadline:
        if not WebhookEvent.objects.filter(integration=row, state__in=["received", "processing"]).exists():
            break
        time.sleep(0.05)
    connection.close()
    return time.perf_counter() - started


def count_outcomes(row, expected):
    from integrations.models import StateTransition, WebhookEvent
    from payments.models import Payment

    paid = Payment.objects.filter(integration=row, status="paid").count()
    moves = (StateTransition.objects.filter(to_state="paid", field="status")
             .values("object_id").annotate(n=Count("pk")).filter(n__gt=1).count())
    events = dict(WebhookEvent.objects.filter(integration=row).values_list("state").annotate(n=Count("pk")))
    processed = events.get("processed", 0)
    waiting = events.get("received", 0) + events.get("processing", 0)
    stored = processed + waiting + events.get("failed", 0)
    return {"paid": paid, "lost": expected - stored, "waiting": waiting,
            "applied_twice": moves + max(processed - expected, 0), "events": events}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--duplicates", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--pool", choices=["threads", "prefork"], default="prefork",
                        help="the worker's pool (two threads or two processes)")
    parser.add_argument("--eager", action="store_true", help="apply each notification inside its request")
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    gunicorn = worker = gateway = None
    try:
        gateway_port = free_port()
        row, bodies = prepare(args.payments, f"http://127.0.0.1:{gateway_port}/sandbox/moamalat/cube/paylink.svc/api/")
        rng = random.Random(13)
        traffic = bodies + [rng.choice(bodies) for _ in range(args.duplicates)]
        rng.shuffle(traffic)
        connection.close()
        port = free_port()
        gateway = start_gunicorn(gateway_port, False, sandbox=True)
        gunicorn = start_gunicorn(port, args.eager)
        if not args.eager:
            worker = start_worker(args.pool)
        base = f"http://127.0.0.1:{port}"
        warm = [b"{}"] * 40
        run_sender(base + BARE, warm, 2, 30)
        load = os.getloadavg()[0]
        with CpuMeter(gunicorn) as bare_cpu, CpuMeter(None) as bare_db:
            bare_s, bare_status, bare_left = run_sender(base + BARE, traffic, args.concurrency, args.time_limit)
        started = time.perf_counter()
        with (CpuMeter(gunicorn) as hook_cpu, CpuMeter(worker) as worker_cpu, CpuMeter(None) as db_cpu,
              CpuMeter(gateway) as gateway_cpu):
            hook_s, hook_status, hook_left = run_sender(base + WEBHOOK, traffic, args.concurrency, args.time_limit)
            settled_s = wait_settled(row, started, args.time_limit)
        # The bare view again: other work on the machine may have come or gone meanwhile.
        bare2_s, _status, bare2_left = run_sender(base + BARE, traffic, args.concurrency, args.time_limit)
        bare_rate = (len(traffic) - bare_left) / bare_s
        bare2_rate = (len(traffic) - bare2_left) / bare2_s
        hook_rate = (len(traffic) - hook_left) / hook_s
        settled_rate = (len(traffic) - hook_left) / settled_s
        sent = len(traffic) - hook_left
        cpu = {"bare": (bare_cpu.seconds + bare_db.seconds) / (len(traffic) - bare_left) * 1000,
               "web": hook_cpu.seconds / sent * 1000, "db": db_cpu.seconds / sent * 1000,
               "worker": worker_cpu.seconds / sent * 1000 if worker is not None else 0.0}
        cpu["all"] = cpu["web"] + cpu["db"] + cpu["worker"]
        cpu["gateway"] = gateway_cpu.seconds / sent * 1000
        outcome = count_outcomes(row, args.payments)
        not_ok = sum(n for status, n in hook_status.items() if status != 200)
        mode = "applied in the request (--eager)" if args.eager else f"applied by a Celery worker ({args.pool}, 2)"
        print(f"database: {connection.vendor}; gunicorn: 2 sync workers; notifications {mode}; sender: "
              f"{args.concurrency} connections from a second process; {args.payments} payments + "
              f"{args.duplicates} duplicate notifications")
        print(f"load average before the run: {load:.1f} (other work on the machine lowers every rate)")
        print(f"bare Django view:        {len(traffic) - bare_left} requests in {bare_s:.2f} s = {bare_rate:.0f}/s "
              f"(answers {bare_status}); again after the notifications: {bare2_rate:.0f}/s")
        print(f"notifications acknowledged: {len(traffic) - hook_left} in {hook_s:.2f} s = {hook_rate:.0f}/s "
              f"(answers {hook_status}; not sent in time: {hook_left}); ratio to bare {hook_rate / bare_rate:.2f}")
        print(f"notifications settled:   all processed {settled_s:.2f} s after the first send = {settled_rate:.0f}/s; "
              f"ratio to bare {settled_rate / bare_rate:.2f} (target >= 0.5)")
        print(f"server CPU per request: bare view {cpu['bare']:.2f} ms; notification {cpu['all']:.2f} ms (gunicorn "
              f"{cpu['web']:.2f}, worker {cpu['worker']:.2f}, PostgreSQL {cpu['db']:.2f}); bare ÷ notification "
              f"{cpu['bare'] / cpu['all']:.2f} (the settled ratio on an otherwise idle machine, the sender aside); "
              f"the simulated gateway answering FilterTransactions: {cpu['gateway']:.2f} ms")
        print(f"payments paid: {outcome['paid']}/{args.payments}; lost (never stored, or not answered 200): "
              f"{outcome['lost'] + not_ok} (target 0); still waiting for the worker at the time limit: "
              f"{outcome['waiting']}; applied twice: {outcome['applied_twice']} (target 0); webhook events by "
              f"state: {outcome['events']}")
        if outcome["paid"] < args.payments:
            for name in ("worker.log", "gunicorn.log", "gateway.log"):
                log = Path(VAR) / name
                if log.exists() and log.stat().st_size:
                    print(f"--- the end of {name}:\n" + log.read_text()[-2500:])
            from integrations.models import IntegrationLog, WebhookEvent

            failed = WebhookEvent.objects.filter(integration=row).exclude(error="").first()
            if failed is not None:
                print(f"--- an event's error:\n{failed.error[-1500:]}")
            print("--- the gateway calls' outcomes:",
                  dict(IntegrationLog.objects.values_list("status").annotate(n=Count("pk"))))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(15)
        for server in (gunicorn, gateway):
            if server is not None:
                server.terminate()
                server.wait(15)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(VAR, ignore_errors=True)


if __name__ == "__main__":
    main()
