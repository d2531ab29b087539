"""Payment services: everything a view, a task or a command does to payments goes through here.

- `methods`: the ways to pay on offer (with the seed's fallback) and the checks of a new payment;
- `checkout`: `create_payment` (idempotent) and the adapter's `begin`;
- `outcomes`: `apply_notification`, `apply_status` (allowed moves only, compare-and-set, amount and
  currency checked, mismatches recorded), `confirm_wallet`, `refresh_status`;
- `refunds`: `refund` (never beyond what was paid, even racing) sent exactly once;
- `collection`: cash on delivery collected, bank transfers confirmed;
- `reconciliation`: `reconcile` (first resuming the payments a crash left `initiated`), `expire_payments`
  (docs/payments.md).
"""

from .checkout import create_payment, gateway
from .collection import attach_shipment, confirm_manual_refund, confirm_transfer, record_cash_collected
from .errors import IdempotencyConflict
from .methods import available_methods, validate_payment
from .outcomes import apply_notification, apply_status, confirm_wallet, refresh_status
from .reconciliation import expire_payments, reconcile
from .refunds import refund, refund_submission, retry_refunds

__all__ = [
    "IdempotencyConflict", "apply_notification", "apply_status", "attach_shipment", "available_methods",
    "confirm_manual_refund", "confirm_transfer", "confirm_wallet", "create_payment", "expire_payments", "gateway",
    "reconcile", "record_cash_collected", "refresh_status", "refund", "refund_submission", "retry_refunds",
    "validate_payment",
]
