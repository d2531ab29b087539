"""Run the web server, a Celery worker and beat together in the foreground; Ctrl-C stops all three.

A process that exits on its own is started again (see Supervisor) rather than taking the other two
down with it: a worker that dies under load must not also stop the web server and beat."""

import os
import signal
import subprocess
import sys
import threading
import time

BIN = os.path.dirname(sys.executable)


def _print(message):
    print(message, flush=True)


class Supervisor:
    """Keeps named commands running.

    A process that exits (whatever its code: all of them are meant to run until stopped) is started
    again after `min_delay`, doubled for each exit in a row that came within `stable_after` seconds
    of its start, capped at `max_delay`; one that had run `stable_after` seconds starts over at
    `min_delay`. So a crash loop (a broken setting, a port taken) costs little CPU and leaves one log
    line per attempt, while a one-off crash is mended within a second. Each start, exit and restart
    is logged through `log`."""

    def __init__(self, commands, env=None, *, min_delay=1.0, max_delay=60.0, stable_after=60.0,
                 stop_timeout=10.0, poll_interval=0.2, log=_print):
        self.commands = dict(commands)
        self.env = env
        self.min_delay, self.max_delay, self.stable_after = min_delay, max_delay, stable_after
        self.stop_timeout, self.poll_interval, self.log = stop_timeout, poll_interval, log
        self.procs = {}
        self._started_at = {}
        self._quick_exits = dict.fromkeys(self.commands, 0)
        self._restart_at = {}
        self._stopping = threading.Event()
        self._force = threading.Event()

    def start(self):
        for name in self.commands:
            self._spawn(name)

    def _spawn(self, name):
        self._started_at[name] = time.monotonic()
        try:
            proc = subprocess.Popen(self.commands[name], env=self.env)
        except OSError as exc:  # a missing executable: a crash like any other, retried with backoff
            self.procs[name] = None
            self._schedule_restart(name, f"could not start: {exc}")
            return
        self.procs[name] = proc
        self.log(f"eishro: {name} started (pid {proc.pid})")

    def _schedule_restart(self, name, why):
        ran_for = time.monotonic() - self._started_at[name]
        self._quick_exits[name] = 1 if ran_for >= self.stable_after else self._quick_exits[name] + 1
        delay = min(self.max_delay, self.min_delay * 2 ** (self._quick_exits[name] - 1))
        self._restart_at[name] = time.monotonic() + delay
        self.log(f"eishro: {name} {why} after {ran_for:.1f} s; restarting in {delay:g} s")

    def check(self):
        """One round: notice the processes that exited, and start again those whose delay is over."""
        for name in self.commands:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                self.procs[name] = None
                self._schedule_restart(name, f"(pid {proc.pid}) exited with {proc.returncode}")
            elif proc is None and time.monotonic() >= self._restart_at.get(name, float("inf")):
                if self._stopping.is_set():
                    return
                del self._restart_at[name]
                self._spawn(name)

    def request_stop(self, *_):
        """Ask run() to stop everything (a signal handler: safe to call from one). A second request
        while stopping kills what is still running instead of waiting for it."""
        if self._stopping.is_set():
            self._force.set()
        self._stopping.set()

    def run(self):
        """Supervise until request_stop(); then stop every process and return."""
        try:
            while not self._stopping.wait(self.poll_interval):
                self.check()
        finally:
            self.stop()

    def stop(self):
        """SIGTERM to every running process; those still running after `stop_timeout` are killed."""
        running = {name: proc for name, proc in self.procs.items() if proc is not None and proc.poll() is None}
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(proc.poll() is None for proc in running.values()):
            if self._force.is_set() or time.monotonic() >= deadline:
                for name, proc in running.items():
                    if proc.poll() is None:
                        self.log(f"eishro: {name} (pid {proc.pid}) did not stop; killing it")
                        proc.kill()
                        proc.wait()
                break
            time.sleep(0.05)
        self.log("eishro: stopped")


def serve(commands, env=None, on_started=None, **options):
    """Supervise `commands` in the foreground until SIGINT (Ctrl-C), SIGTERM or SIGHUP; return 0."""
    supervisor = Supervisor(commands, env=env, **options)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), supervisor.request_stop)
    supervisor.start()
    if on_started:
        on_started()
    supervisor.run()
    return 0


def worker_command(app="eishro"):
    """The worker as `make run` starts it (bench/worker_throughput.py measures this very command).

    Threads, because our tasks mostly wait on providers (HTTP, SOAP, FTP: up to 30 s a call): eight
    threads on two cores keep eight calls in flight for one process's memory, where eight prefork
    children would hold eight copies of Django. The threads pool ran only --concurrency tasks per
    2 to 10 s while messages waited, until its consumer was woken for their acknowledgements
    (eishro.consumer)."""
    return [os.path.join(BIN, "celery"), "-A", app, "worker", "-l", "info", "--pool=threads", "--concurrency=8"]


def main():
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Celery refuses root unless told; our development machines do run as root.
        env.setdefault("C_FORCE_ROOT", "1")
    addr = env.get("RUN_ADDR", "127.0.0.1:8000")
    commands = {
        "web": [sys.executable, "manage.py", "runserver", addr, "--noreload"],
        "worker": worker_command(),
        "beat": [os.path.join(BIN, "celery"), "-A", "eishro", "beat", "-l", "info", "-S", "django"],
    }

    def started():
        print(f"eishro: web on http://{addr}/admin/, worker and beat started (Ctrl-C stops all three)", flush=True)
        # In the background: supervision starts at once, and a Ctrl-C never waits for the web server.
        threading.Thread(target=send_startup_tasks, args=(addr,), daemon=True).start()

    return serve(commands, env=env, on_started=started)


def send_startup_tasks(addr, wait=30.0):
    """Once the web server answers (the simulators live there), queue the domain apps' start-up jobs
    (their `startup_tasks` declarations, see integrations.domain)."""
    import socket

    import django

    from eishro.celery import app

    host, _, port = addr.rpartition(":")
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    try:
        django.setup()  # the result backend is a Django model, and the declarations are the apps'
        from integrations.domain import startup_tasks

        names = startup_tasks()
        for name in names:
            app.send_task(name)
    except Exception as exc:  # noqa: BLE001 - a convenience only: never stop the three processes for it
        print(f"eishro: could not queue the start-up jobs: {exc}", flush=True)
        return
    print(f"eishro: queued {', '.join(names) or 'nothing'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
