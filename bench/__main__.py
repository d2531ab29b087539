"""`make bench` / `python -m bench [name ...]`: run every benchmark (or the named ones) in turn.

Each benchmark is a script of its own that prints its figures; they run in separate processes so
that each gets a fresh Django set-up on its own throwaway database (whatever DATABASE_URL points at).
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "smm_poll": "polling 10,000 open SMM orders on three simulated panels",
    "smm_poll_scale": "polling 100,000 open SMM orders on 10 panels answering after 150 ms, one poll per panel",
    "smm_sync": "syncing a 5,000-service SMM catalogue, first sync and resync",
    "api_lists": "API and admin list pages at 1,000,000 SMM orders beside a 1,000-order merchant",
    "monitoring_round": "a health round of 50 providers, 10 of them hanging",
    "transport_websocket": "2,000 WebSocket messages through the traced consumer vs a bare recv loop",
    "transport_smtp": "500 e-mails through the traced SMTP backend vs Django's bare backend",
    "transport_soap": "500 SOAP operations through the traced SoapClient vs a bare zeep client",
    "transport_ftp": "300 FTP store+retrieve pairs through the traced FtpClient vs bare ftplib",
    "transport_s3": "300 S3 PutObject+GetObject pairs through the traced S3Client vs a bare boto3 client",
    "payment_notifications": "signed Moamalat notifications per second through gunicorn vs a bare view, lost and "
                             "applied twice",
    "payment_reconcile": "reconciliation of 10,000 pending Moamalat payments: calls and SQL queries per payment",
    "worker_throughput": "tasks per second through a real worker started as `make run` does, vs its bare pool",
}


def main(argv):
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"bench: unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    failed = []
    for name in names:
        print(f"\n=== {name}: {BENCHMARKS[name]}", flush=True)
        if subprocess.call([sys.executable, str(HERE / f"{name}.py")]) != 0:
            failed.append(name)
    if failed:
        sys.exit(f"bench: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
