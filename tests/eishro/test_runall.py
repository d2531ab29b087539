"""Issue 11, point 12: `make run`'s runner stopped the web server and beat when the worker died.
It now starts a process that exited again, with a growing delay, and a stop signal still ends all."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from eishro.runall import Supervisor
from tests.conftest import ROOT, wait_for

PY = sys.executable
CRASHER = [PY, "-c", "import sys; sys.exit(3)"]
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]


class Recorder:
    """The supervisor's log lines, with when they were written."""

    def __init__(self):
        self.lines = []

    def __call__(self, message):
        self.lines.append((time.monotonic(), message))

    def matching(self, pattern):
        return [(at, re.search(pattern, line)) for at, line in self.lines if re.search(pattern, line)]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _supervise(commands, **options):
    log = Recorder()
    supervisor = Supervisor(commands, log=log, poll_interval=0.02, **options)
    supervisor.start()
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    return supervisor, thread, log


def test_a_crashed_process_is_restarted_with_growing_delays_while_the_others_keep_running():
    supervisor, thread, log = _supervise(
        {"crasher": CRASHER, "sleeper": SLEEPER}, min_delay=0.2, max_delay=0.8, stable_after=30,
    )
    try:
        sleeper = supervisor.procs["sleeper"]
        wait_for(lambda: len(log.matching(r"^eishro: crasher started")) >= 5, timeout=10, interval=0.02)
        exits = log.matching(r"^eishro: crasher \(pid \d+\) exited with 3 after [\d.]+ s; restarting in ([\d.]+) s")
        starts = log.matching(r"^eishro: crasher started \(pid (\d+)\)")
        # Doubled after each quick exit, then capped.
        assert [float(m[1]) for _, m in exits[:4]] == [0.2, 0.4, 0.8, 0.8]
        for (exited_at, match), (started_at, _) in zip(exits[:4], starts[1:5], strict=True):
            assert started_at - exited_at >= float(match[1]) - 0.01, "restarted before its delay was over"
        assert len({m[1] for _, m in starts}) == len(starts), "each start is a new process"
        # The other one was never touched.
        assert supervisor.procs["sleeper"] is sleeper and sleeper.poll() is None
        assert len(log.matching(r"^eishro: sleeper started")) == 1
    finally:
        supervisor.request_stop()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert sleeper.poll() is not None
    assert log.lines[-1][1] == "eishro: stopped"


def test_the_delay_starts_over_once_a_process_has_run_a_while():
    flaky = [PY, "-c", "import sys, time; time.sleep(0.4); sys.exit(1)"]
    supervisor, thread, log = _supervise({"flaky": flaky}, min_delay=0.1, max_delay=5, stable_after=0.3)
    try:
        wait_for(lambda: len(log.matching(r"^eishro: flaky \(pid")) >= 3, timeout=10, interval=0.02)
    finally:
        supervisor.request_stop()
        thread.join(timeout=15)
    delays = [m[1] for _, m in log.matching(r"^eishro: flaky .* restarting in ([\d.]+) s")]
    assert delays[:3] == ["0.1", "0.1", "0.1"]


def test_a_command_that_cannot_start_is_retried_like_a_crash():
    supervisor, thread, log = _supervise(
        {"missing": ["/nonexistent/eishro-command"], "sleeper": SLEEPER}, min_delay=0.1, max_delay=0.2, stable_after=30,
    )
    try:
        wait_for(lambda: len(log.matching(r"^eishro: missing could not start")) >= 3, timeout=10, interval=0.02)
        assert supervisor.procs["sleeper"].poll() is None
    finally:
        supervisor.request_stop()
        thread.join(timeout=15)
    assert not thread.is_alive()


STUBBORN = [PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"]
RUNNER = f"""
import sys
from eishro.runall import serve
sys.exit(serve({{"crasher": {CRASHER!r}, "sleeper": {SLEEPER!r}, "stubborn": {STUBBORN!r}}},
               min_delay=0.2, max_delay=1, stable_after=30, stop_timeout=2, poll_interval=0.05))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_runner_and_every_process(tmp_path, signum):
    out = tmp_path / "runner.log"
    with open(out, "w") as log:
        runner = subprocess.Popen([PY, "-c", RUNNER], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: out.read_text().count("eishro: crasher started") >= 2, timeout=10, interval=0.05)
        pids = {name: int(pid) for name, pid in re.findall(r"eishro: (sleeper|stubborn) started \(pid (\d+)\)",
                                                           out.read_text())}
        assert set(pids) == {"sleeper", "stubborn"} and all(_alive(pid) for pid in pids.values())
        started = time.monotonic()
        runner.send_signal(signum)
        assert runner.wait(timeout=10) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    # The sleeper stops on SIGTERM; the one ignoring it is killed once stop_timeout is over.
    assert time.monotonic() - started < 6
    assert not any(_alive(pid) for pid in pids.values())
    text = out.read_text()
    assert "eishro: stubborn (pid" in text and "did not stop; killing it" in text
    assert text.rstrip().endswith("eishro: stopped")
