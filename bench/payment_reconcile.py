"""Benchmark: reconciliation of N pending Moamalat payments against the gateway simulator: provider calls
and SQL queries per payment, and the time per payment beside a bare loop of the same signed calls.

    .venv/bin/python bench/payment_reconcile.py [--payments 10000] [--paid 1000] [--bare 1000]

Sets Django up on a throwaway test database (bench/smm_common.py: created and destroyed here, on whatever
DATABASE_URL points at) with the simulators served by a child process on a loopback port. Writes N
pending card payments on a Moamalat row pointed at the simulator, of which `--paid` were approved at
the gateway (their notifications lost) and the others never paid; then runs one reconciliation round
over all of them (`payments.services.reconcile(limit=N)`, what the five-minute job does 200 at a time)
and counts the simulator calls (IntegrationLog rows) and our SQL statements. The bare loop sends
`--bare` signed FilterTransactions with requests alone, so the call's own cost is known.
"""

import argparse
import time

from smm_common import Environment, QueryCounter, connection


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--paid", type=int, default=1_000)
    parser.add_argument("--bare", type=int, default=1_000)
    args = parser.parse_args()

    from integrations.models import ExternalIntegration, IntegrationLog, Kind
    from payments.apps import DEMO_MOAMALAT
    from payments.models import Payment, PaymentStatus, new_reference
    from payments.sandbox.moamalat import _save
    from payments.services import reconcile

    with Environment() as env:
        sandbox = env.base.replace("/sandbox/smm", "/sandbox/moamalat")
        row = ExternalIntegration.objects.create(
            kind=Kind.PAYMENT, code="moamalat", name="moamalat", base_url=f"{sandbox}/cube/paylink.svc/api/",
            credentials=DEMO_MOAMALAT, configuration={"environment": "test", "retries": 0})
        payments = [Payment(owner=env.merchant, amount="10.000", currency="LYD", method="card_credit",
                            integration=row, status=PaymentStatus.PENDING, next_step="lightbox",
                            reference=new_reference()) for _ in range(args.payments)]
        Payment.objects.bulk_create(payments, batch_size=1000)
        mid, tid = DEMO_MOAMALAT["merchant_id"], DEMO_MOAMALAT["terminal_id"]
        for n, payment in enumerate(payments[:args.paid]):
            # Approved at the gateway (the simulator's own record), the notification never sent.
            sysref = str(7_000_000 + n)
            _save({"TransactionId": sysref, "RRN": f"2246{sysref:0>8}", "STAN": sysref[-6:], "TransType": "Sale",
                   "Status": "Approved", "ActionCode": "00", "AmountTrxn": 10000, "Currency": "LYD",
                   "CardNo": "411111XXXXXX1111", "MerchantReference": payment.reference, "MerchantId": mid,
                   "TerminalId": tid, "TxnDateTime": "2026-12-07T10:00:00+02:00", "Refunded": 0,
                   "OriginalTxnId": ""})

        adapter = row.adapter
        import requests

        session = requests.Session()
        url = adapter.api_base + "FilterTransactions"
        t0 = time.perf_counter()
        for payment in payments[:args.bare]:
            body = {**adapter._api_fields(), "MerchantReference": payment.reference, "DisplayLength": 10,
                    "DisplayStart": 0}
            session.post(url, json=body, timeout=10).json()
        bare_ms = (time.perf_counter() - t0) / max(args.bare, 1) * 1000

        logs_before = IntegrationLog.objects.filter(integration=row).count()
        t0 = time.perf_counter()
        with QueryCounter() as counter:
            counts = reconcile(limit=args.payments)
        elapsed = time.perf_counter() - t0
        calls = IntegrationLog.objects.filter(integration=row).count() - logs_before
        states = dict(Payment.objects.filter(integration=row).values_list("status").annotate(
            n=__import__("django.db.models", fromlist=["Count"]).Count("pk")))
        assert states.get("paid", 0) == args.paid, (counts, states)
        per_ms = elapsed / args.payments * 1000
        print(f"database: {connection.vendor}; {args.payments} pending payments, {args.paid} approved at the "
              f"simulator; reconcile counts {counts}; states after {states}")
        print(f"provider calls: {calls} ({calls / args.payments:.2f} per payment); SQL queries: {counter.count} "
              f"({counter.count / args.payments:.2f} per payment)")
        print(f"time: {elapsed:.1f} s ({per_ms:.2f} ms per payment); bare signed FilterTransactions loop "
              f"{bare_ms:.2f} ms a call; ratio {per_ms / bare_ms:.2f}")


if __name__ == "__main__":
    main()
