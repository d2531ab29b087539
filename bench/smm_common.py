"""Shared set-up of the SMM benchmarks: Django on a throwaway test database (created and destroyed
here, on whatever DATABASE_URL points at), a private var directory (file cache), and the sandbox
simulators served from a threaded WSGI server on a local port.

The simulator runs in a child process, not in a thread of the benchmark: a real panel is a remote
server, so its work must not share our interpreter lock or count against our CPU time, or the
benchmark would measure the toy server's Python as much as ours. The child shares the test database
(SQLite file or PostgreSQL) and the file cache with the parent."""

import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("SANDBOX_ENABLED", "true")
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"smmbench{os.getpid()}")
VAR = tempfile.mkdtemp(prefix="eishro-smm-bench-")
os.environ["EISHRO_VAR_DIR"] = VAR

import django  # noqa: E402

django.setup()

from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Server(ThreadedWSGIServer):
    request_queue_size = 128

    def get_request(self):
        # wsgiref writes the headers and the body separately; with Nagle on, the second write waits
        # for the client's delayed ACK (~40 ms a call), which would measure the toy server, not us.
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


class QueryCounter:
    """Counts this thread's SQL statements (cheaper than CaptureQueriesContext)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        self._cm = connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def serve(pipe):
    """The child process: serve the sandbox until terminated, telling the parent the port."""
    server = Server(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    pipe.send(server.server_address[1])
    pipe.close()
    server.serve_forever()


class Environment:
    def __enter__(self):
        self.old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        connection.close()  # the child must open its own connection, not share this socket
        receiver, sender = multiprocessing.Pipe(duplex=False)
        self.server = multiprocessing.get_context("fork").Process(target=serve, args=(sender,), daemon=True)
        self.server.start()
        if not receiver.poll(30):
            raise SystemExit("the sandbox server did not start")
        self.base = f"http://127.0.0.1:{receiver.recv()}/sandbox/smm"
        from django.contrib.auth import get_user_model

        self.merchant = get_user_model().objects.create_user("bench-merchant")
        return self

    def panel_url(self, code):
        return f"{self.base}/{code}/api/v2"

    def __exit__(self, *exc):
        self.server.terminate()
        self.server.join(10)
        if connection.vendor == "postgresql":
            # The server's connections may outlive its process by a moment, and the per-panel
            # poll's threads keep theirs (CONN_MAX_AGE): end them, or the database cannot be dropped.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        connection.close()
        connection.creation.destroy_test_db(self.old_name, verbosity=0)
        shutil.rmtree(VAR, ignore_errors=True)
