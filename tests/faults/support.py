"""What the fault tests share: a Redis of the test's own, pointing the publisher at a broker, free ports."""

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager

import redis

from eishro.celery import app as celery_app

REDIS_SERVER = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A port where nothing listens (bound, then released)."""
    return free_port()


def _reset_publisher():
    # Dropped, not closed: kombu registers producer pools per connection URL process-wide, and a
    # closed one would be handed back to the next user of that URL.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def publishing_to(url, transport=None, options=None):
    """Tasks sent from this process go to the broker at `url` (a real transport; a closed port is a
    broker that is down). The settings' keys are set under the CELERY_ namespace, which shadows the
    plain ones, and the write URL rather than the broker URL, which CELERY_BROKER_URL in the
    environment would win over."""
    conf = celery_app.conf
    keys = ("CELERY_BROKER_WRITE_URL", "CELERY_BROKER_TRANSPORT", "CELERY_BROKER_TRANSPORT_OPTIONS")
    saved = {key: conf.get(key) for key in keys}
    conf["CELERY_BROKER_WRITE_URL"] = url
    conf["CELERY_BROKER_TRANSPORT"] = transport
    if options is not None:
        conf["CELERY_BROKER_TRANSPORT_OPTIONS"] = options
    _reset_publisher()
    try:
        yield
    finally:
        conf.update(saved)
        _reset_publisher()


class OwnRedis:
    """A redis-server of the test's own on a free port, without persistence: stopping it loses
    what it held, as a crashed Redis without persistence does."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
