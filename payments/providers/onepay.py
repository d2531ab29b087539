"""1Pay: REST and JSON, a wallet payment by one-time code (initiate → code → confirm → status), refunds.

1Pay publishes no merchant API. This wire format follows the seed (REST API + SDK, planned) and the
one-time-code flow of PROTOCOLS.md; docs/protocols/wallets.md is its description, and
payments/sandbox/onepay.py serves it. Every call carries `Authorization: Bearer <api_key>` and
`X-Merchant-Id: <merchant_id>`:

  POST payments                 Idempotency-Key: <our reference>
                                {orderId, amount: 12500, currency: "LYD", msisdn: "+2189XXXXXXXX",
                                 method: "wallet_otp"}
                                -> 201 (200 when the key was seen) {id, orderId, status: "otp_sent",
                                   amount, currency, expiresAt}
  POST payments/{id}/confirm    {orderId, otp} -> 200 the payment {id, status: "paid"|"failed"|
                                "expired", transactionId, amount, refundedAmount, message}
  GET  payments/{id}            the payment;  GET payments?orderId=…  -> {"data": [payment, …]}
  POST payments/{id}/refunds    Idempotency-Key: <our refund reference>  {amount, reference}
                                -> 201 {id, status: "succeeded"|"failed", amount, message}
  GET  health
  a refusal: HTTP 4xx {"error": {"code", "message"}}

Amounts are integers in dirhams (LYD x 1000), as card gateways send them. The Idempotency-Key is
our reference, so a create sent again (retried: it moves no money) is the same payment at 1Pay and a
refund sent again is refunded once. A confirm and a refund are still sent once: a lost answer is an
`UnknownOutcome`, settled by `status`.
"""

from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.adapters import CredentialField, HealthCheck, ProviderMeta
from integrations.errors import ProviderProtocolError, ProviderValidationError, UnknownOutcome

from ..interface import Checkout, Method, NextStep, ProviderStatus, RefundResult, State
from .wallet import CURRENCY, WalletGateway, wire_state
from .wallet import wire_text as _text

FINAL = (State.PAID, State.FAILED, State.EXPIRED, State.CANCELLED)


def to_dirhams(amount):
    return int(Decimal(amount).scaleb(3))


def from_dirhams(value):
    """An integer of dirhams as dinars; None when it is not a whole non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return None
    return Decimal(int(value)).scaleb(-3).quantize(Decimal("0.001"))


class OnePay(WalletGateway):
    methods = (Method.ONEPAY,)
    meta = ProviderMeta(
        label="1Pay",
        kind="payment",
        credentials=(
            CredentialField("merchant_id", label=gettext_lazy("Merchant ID"), secret=False),
            CredentialField("api_key", label=gettext_lazy("API key")),
        ),
        health=HealthCheck(path="health", timeout=5.0),
        timeout=20.0,
        sandbox_path="payment/onepay/api/v1/",
    )
    auth_codes = frozenset({"unauthorized", "invalid_api_key"})

    def _headers(self, idempotency_key=None):
        headers = {"Authorization": f"Bearer {self.credential('api_key')}",
                   "X-Merchant-Id": self.credential("merchant_id")}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def begin(self, payment):
        self.ensure_enabled()
        body = {"orderId": payment.reference, "amount": to_dirhams(self.amount(payment)), "currency": CURRENCY,
                "msisdn": self.payer_phone(payment), "method": "wallet_otp"}
        answer = self.rest_call("POST", "payments", operation="create_payment", idempotent=True, json=body,
                                headers=self._headers(payment.reference))
        payment_id = _text(answer.get("id"))
        if not payment_id or _text(answer.get("orderId")) != payment.reference:
            raise ProviderProtocolError("1Pay's answer has no id, or another orderId.", payload=answer, sent=True)
        return Checkout(next_step=NextStep.OTP, provider_reference=payment_id[:100], state=State.PENDING,
                        data={"phone": body["msisdn"], "expires_at": _text(answer.get("expiresAt"))[:40]},
                        instructions=_("Enter the code 1Pay sent to %s by SMS.") % body["msisdn"])

    def confirm(self, payment, code):
        payment_id = self._payment_id(payment)
        body = {"orderId": payment.reference, "otp": str(code or "").strip()}
        answer = self.write("confirm", lambda: self.rest_call(
            "POST", f"payments/{payment_id}/confirm", operation="confirm", idempotent=False, json=body,
            headers=self._headers()))
        try:
            status = self._status(answer, payment.reference)
        except ProviderProtocolError as exc:
            raise UnknownOutcome(str(exc), payload=answer, sent=True) from None
        if status.state not in FINAL or (status.state == State.PAID and not status.provider_reference):
            raise UnknownOutcome(_("1Pay's confirm answer says neither paid nor failed."), payload=answer, sent=True)
        return status

    def status(self, payment):
        payment_id = _text(getattr(payment, "provider_reference", ""))
        if payment_id:
            answer = self.rest_call("GET", f"payments/{payment_id}", operation="get_payment", idempotent=True,
                                    headers=self._headers())
            return self._status(answer, payment.reference)
        # The create's answer was lost: 1Pay knows the payment by our order id, if at all.
        answer = self.rest_call("GET", "payments", operation="find_payment", idempotent=True,
                                params={"orderId": payment.reference}, headers=self._headers())
        found = [p for p in answer.get("data") or [] if isinstance(p, dict)]
        if not found:
            return ProviderStatus(state=State.FAILED, message="No 1Pay payment for this order",
                                  details={"not_found": True})
        return self._status(found[-1], payment.reference)

    def refund(self, payment, refund):
        payment_id = self._payment_id(payment)
        body = {"amount": to_dirhams(self.dinars(refund.amount)), "reference": refund.reference}
        answer = self.write("refund", lambda: self.rest_call(
            "POST", f"payments/{payment_id}/refunds", operation="refund", idempotent=False, json=body,
            headers=self._headers(refund.reference)))
        state = {"succeeded": "refunded", "failed": "failed", "pending": "pending"}.get(_text(answer.get("status")))
        refund_id = _text(answer.get("id"))
        if state is None or (state == "refunded" and not refund_id):
            raise UnknownOutcome(_("1Pay's refund answer says neither done nor refused."), payload=answer, sent=True)
        return RefundResult(state=state, provider_reference=refund_id[:100], message=_text(answer.get("message"))[:200])

    def _payment_id(self, payment):
        payment_id = _text(getattr(payment, "provider_reference", ""))
        if not payment_id:
            raise ProviderValidationError(_("1Pay has not named this payment yet."), sent=False)
        return payment_id

    @staticmethod
    def _status(answer, reference):
        state = wire_state(answer.get("status"))
        if state is None:
            raise ProviderProtocolError(f"1Pay sent an unknown status {_text(answer.get('status'))[:30]!r}.",
                                        payload=answer, sent=True)
        if _text(answer.get("orderId")) not in ("", reference):
            raise ProviderProtocolError("1Pay answered about another order.", payload=answer, sent=True)
        details = {}
        refunded = from_dirhams(answer.get("refundedAmount"))
        if refunded:
            details["refunded_amount"] = str(refunded)
        return ProviderStatus(state=state, amount=from_dirhams(answer.get("amount")),
                              currency=_text(answer.get("currency")).upper()[:3] or CURRENCY,
                              provider_reference=_text(answer.get("transactionId"))[:100],
                              message=_text(answer.get("message"))[:200], details=details)

