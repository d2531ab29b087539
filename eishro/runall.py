"""Run the web server, a Celery worker and beat together in the foreground; Ctrl-C stops all three."""

import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)


def main():
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Celery refuses root unless told; our development machines do run as root.
        env.setdefault("C_FORCE_ROOT", "1")
    addr = env.get("RUN_ADDR", "127.0.0.1:8000")
    commands = {
        "web": [sys.executable, "manage.py", "runserver", addr, "--noreload"],
        "worker": [
            os.path.join(BIN, "celery"),
            "-A",
            "eishro",
            "worker",
            "-l",
            "info",
            "--pool=threads",
            "--concurrency=8",
        ],
        "beat": [os.path.join(BIN, "celery"), "-A", "eishro", "beat", "-l", "info", "-S", "django"],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    print(f"eishro: web on http://{addr}/admin/, worker and beat started (Ctrl-C stops all three)", flush=True)

    def stop(*_):
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    try:
        send_startup_tasks(addr)  # inside the try: a Ctrl-C while it waits stops all three cleanly
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"eishro: {name} exited with {proc.returncode}; stopping the others", flush=True)
                    stop()
                    return proc.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop()
        return 0


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
