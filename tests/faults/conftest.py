import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, _database_url
from tests.smm.conftest import make_provider, sandbox_provider  # noqa: F401  (the SMM suites' fixtures)


class Worker:
    """A real `celery worker` process of the test's own (its broker and cache given in `env`), to
    be SIGKILLed or stopped as the test says."""

    def __init__(self, env, name):
        self.env, self.log_path, self.proc = env, ROOT / "var" / f"test-faults-{name}-{os.getpid()}.log", None

    def start(self, timeout=60):
        self.log_path.parent.mkdir(exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.worker_app", "worker", "--pool=threads",
                 "--concurrency=4", "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()[-3000:]}")
            if " ready." in self.log()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker did not become ready in {timeout} s:\n{self.log()[-3000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL: no warm shutdown, nothing acknowledged or given back."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        """Warm shutdown: the tasks running finish first."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def start_worker(transactional_db, live_server):
    """start_worker(name, **env): a worker on the test database whose simulators are live_server's."""
    workers = []

    def start(name, **env):
        worker = Worker({**os.environ, "DATABASE_URL": _database_url(), "C_FORCE_ROOT": "1",
                         "SANDBOX_BASE_URL": f"{live_server.url}/sandbox", "PYTHONUNBUFFERED": "1", **env}, name)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
