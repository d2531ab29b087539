"""Benchmark: tasks per second through a real Celery worker, started with `make run`'s own command
(eishro.runall.worker_command: the threads pool, eight threads), on the configured broker, as a
ratio to the same pool running the same tasks with no broker and no consumer in between.

    .venv/bin/python bench/worker_throughput.py [--tasks 400] [--task-ms 50] [--pool threads]
                                                [--concurrency 8] [--time-limit 120] [--json]

The broker is whatever the environment configures, as for `make run`: the embedded file broker
(under a throwaway EISHRO_VAR_DIR unless one is set) or Redis (REDIS_URL / CELERY_BROKER_URL; use a
database of your own, e.g. redis://127.0.0.1:6379/7). The tasks go to a queue of this run's own, so
another worker on the same broker takes none of them. Each task sleeps `--task-ms` (a provider's
answer, say) and marks its end in a file.

First the bare pool (Celery's pool class for `--pool`, `--concurrency` wide) runs `--tasks` tasks:
its rate is the ceiling. Then `--tasks` messages are queued, the worker is started, and its drain
rate is timed from the first task's end to the last one's, as messages waited all along; the
longest gap between two ends shows a stall (before eishro.consumer, a threads worker ran eight
tasks, then waited two seconds for its heartbeat timer, however many messages were waiting). Prints
both rates, their ratio (target >= 0.7 for 50 ms tasks) and the longest gap; `--json` prints one
JSON object instead (the tests read it).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
OWN_VAR = "EISHRO_VAR_DIR" not in os.environ
if OWN_VAR:
    # A private broker folder: a worker of someone's `make run` must not take our messages, nor we theirs.
    os.environ["EISHRO_VAR_DIR"] = tempfile.mkdtemp(prefix="eishro-worker-bench-")

from eishro.celery import app  # noqa: E402 - the worker loads this module as its app (-A)


@app.task(name="bench.worker_throughput.mark", ignore_result=True)
def mark(path, seconds):
    run_one(path, seconds)


def run_one(path, seconds):
    time.sleep(seconds)
    # One byte per task, appended: the count is the file's size, and each write's time its end.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


class Ends:
    """Watches the marks file: when each task ended, as seen by polling its size."""

    def __init__(self, path):
        self.path = path
        self.times = []

    def count(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def wait(self, total, deadline, alive=lambda: True):
        while len(self.times) < total and time.monotonic() < deadline and alive():
            done = min(self.count(), total)
            now = time.monotonic()
            self.times.extend([now] * (done - len(self.times)))
            time.sleep(0.002)
        return len(self.times)

    def longest_gap(self):
        return max((b - a for a, b in zip(self.times, self.times[1:], strict=False)), default=0.0)


def bare_pool(pool_name, concurrency, tasks, seconds, workdir, time_limit):
    from celery.concurrency import get_implementation

    path = os.path.join(workdir, "bare.marks")
    if pool_name == "prefork":
        # billiard's pool itself: Celery's prefork class wants a worker's app and host name to start.
        from billiard.pool import Pool

        pool = Pool(concurrency)
        submit, stop = pool.apply_async, lambda: (pool.terminate(), pool.join())
    else:
        pool = get_implementation(pool_name)(limit=concurrency)
        pool.start()
        submit, stop = partial(pool.apply_async, callback=lambda result: None), pool.stop
    try:
        ends = Ends(path)
        started = time.monotonic()
        for _ in range(tasks):
            submit(run_one, (path, seconds))
        done = ends.wait(tasks, started + time_limit)
        elapsed = time.monotonic() - started
        return {"done": done, "seconds": elapsed, "rate": done / elapsed}
    finally:
        stop()


def through_worker(pool_name, concurrency, tasks, seconds, workdir, time_limit):
    from eishro.runall import worker_command

    path = os.path.join(workdir, "worker.marks")
    queue = f"bench-throughput-{uuid.uuid4().hex[:12]}"
    for _ in range(tasks):
        mark.apply_async((path, seconds), queue=queue)
    command = [c for c in worker_command(app="bench.worker_throughput")
               if not c.startswith(("--pool=", "--concurrency="))]
    command += [f"--pool={pool_name}", f"--concurrency={concurrency}", "-Q", queue]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("C_FORCE_ROOT", "1")
    log_path = os.path.join(workdir, "worker.log")
    with open(log_path, "w") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ends = Ends(path)
        done = ends.wait(tasks, time.monotonic() + time_limit, alive=lambda: worker.poll() is None)
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}:\n{Path(log_path).read_text()[-3000:]}")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.connection_for_write() as conn:  # with what the time limit left, and its binding
            bound = app.amqp.queues[queue](conn.default_channel)
            bound.declare()  # kombu deletes the bindings this connection knows of: none until declared
            bound.delete()
    span = ends.times[-1] - ends.times[0] if len(ends.times) > 1 else 0.0
    return {
        "done": done,
        "seconds": span,
        "rate": (done - 1) / span if span else 0.0,
        "longest_gap": ends.longest_gap(),
        "command": " ".join(command),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--task-ms", type=float, default=50.0)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()  # the app's result backend is a Django model, even for tasks that store no result
    seconds = args.task_ms / 1000
    if app.conf.broker_url.startswith("filesystem://"):
        broker = f"files in {app.conf.broker_transport_options['data_folder_in']}"
    else:
        with app.connection_for_write() as conn:
            broker = conn.as_uri()  # without its password
    try:
        with tempfile.TemporaryDirectory(prefix="eishro-worker-bench-") as workdir:
            bare = bare_pool(args.pool, args.concurrency, args.tasks, seconds, workdir, args.time_limit)
            worker = through_worker(args.pool, args.concurrency, args.tasks, seconds, workdir, args.time_limit)
    finally:
        if OWN_VAR:
            shutil.rmtree(os.environ["EISHRO_VAR_DIR"], ignore_errors=True)
    result = {"broker": broker, "pool": args.pool, "concurrency": args.concurrency, "tasks": args.tasks,
              "task_ms": args.task_ms, "bare": bare, "worker": worker,
              "ratio": worker["rate"] / bare["rate"] if bare["rate"] else 0.0}
    if args.json:
        print(json.dumps(result))
        return
    print(f"broker {broker}, pool {args.pool} x{args.concurrency}, {args.tasks} tasks of {args.task_ms:g} ms")
    print(f"  worker command: {worker['command']}")
    print(f"  bare pool:      {bare['rate']:8.1f} tasks/s ({bare['done']} in {bare['seconds']:.2f} s)")
    print(f"  through worker: {worker['rate']:8.1f} tasks/s ({worker['done']} drained in {worker['seconds']:.2f} s, "
          f"longest gap between two ends {worker['longest_gap']:.2f} s)")
    target = " (target >= 0.7 for tasks of 50 ms or more)" if args.task_ms >= 50 else ""
    print(f"  ratio worker/bare: {result['ratio']:.2f}{target}")
    if worker["done"] < args.tasks:
        print(f"  NOT DRAINED: {args.tasks - worker['done']} tasks left when the time limit ended")


if __name__ == "__main__":
    main()
