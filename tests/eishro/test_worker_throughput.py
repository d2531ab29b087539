"""The worker as `make run` starts it (eishro.runall.worker_command: threads, eight of them) drains
waiting tasks at the pool's pace, on either broker. It ran eight tasks, then nothing until its next
timer (the heartbeat: 2 s), however many were waiting, until its consumer was woken for the late
acknowledgements its pool threads queue (eishro.consumer). Measured by bench/worker_throughput.py
itself, on a broker of the test's own: a throwaway folder, or Redis database 7 (others' tests
flush 0 and 1) on a queue of the run's own."""

import json
import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.worker

TASKS, TASK_MS = 50, 100


def _redis_url():
    configured = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    host, port = configured.hostname or "127.0.0.1", configured.port or 6379
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        pytest.skip(f"no Redis answers on {host}:{port}")
    return f"redis://{host}:{port}/7"


def _bench(env):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "worker_throughput.py"), "--tasks", str(TASKS),
         "--task-ms", str(TASK_MS), "--time-limit", "40", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("broker", ["files", "redis"])
def test_the_make_run_worker_drains_waiting_tasks_at_its_pools_pace(broker, tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "REDIS_URL")}
    env["EISHRO_VAR_DIR"] = str(tmp_path / "var")
    if broker == "redis":
        env["CELERY_BROKER_URL"] = _redis_url()
    result = _bench(env)
    worker = result["worker"]
    assert (result["pool"], result["concurrency"]) == ("threads", 8)
    assert worker["done"] == TASKS, f"{TASKS - worker['done']} of {TASKS} tasks still waiting after 40 s"
    # Eight 100 ms tasks at a time: 0.7 s at the pool's pace; it took about 12 s before.
    assert worker["seconds"] < 4, result
    assert worker["longest_gap"] < 1, result
