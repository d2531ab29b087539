"""MobiCash (Almadar's mobile wallet): REST and JSON, initiate → one-time code → confirm → status.

MobiCash publishes no merchant API. This wire format follows the seed (REST API, planned) and the
aggregator flow of PROTOCOLS.md (verify with the mobile number and the amount sends a one-time
code, confirm completes it); docs/protocols/wallets.md is its description, and
payments/sandbox/mobicash.py serves it. Every call carries `X-API-KEY: <api_key>` and the body's
or query's `merchant_id`:

  POST transaction/verify   {merchant_id, mobile_number: "+2189XXXXXXXX", amount: "12.500",
                             currency: "LYD", invoice_no: <our reference>}
                            -> {"status": "success", "result": {process_id, state: "otp_sent",
                                expires_in, message}}
  POST transaction/confirm  {merchant_id, process_id, invoice_no, otp}
                            -> {"status": "success", "result": {process_id, transaction_id,
                                state: "paid"|"failed"|"expired", amount, currency, message}}
  GET  transaction/status   ?merchant_id=…&invoice_no=…  -> the same result, plus refunded_amount
  GET  health
  a refusal: HTTP 4xx {"status": "error", "error": {"code", "message"}}

Amounts are dinars as a decimal string with three places ("12.500"), never a float. The invoice
number is our payment reference, so a verify sent again (retried: it moves no money) is the same
session at MobiCash, and a confirm sent again answers the same payment. A confirm is still sent
once: a lost answer is an `UnknownOutcome`, settled by `status`.

MobiCash takes no refunds through this API (the flow PROTOCOLS.md names has none): `refund` is
`NotSupported`; an operator refunds in MobiCash's merchant portal.
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.adapters import CredentialField, HealthCheck, ProviderMeta
from integrations.errors import ProviderProtocolError, ProviderValidationError, UnknownOutcome

from ..interface import Checkout, Method, NextStep, NotSupported, ProviderStatus, State
from .wallet import CURRENCY, WalletGateway, decimal_amount, wire_state
from .wallet import wire_text as _text


class MobiCash(WalletGateway):
    methods = (Method.MOBICASH,)
    meta = ProviderMeta(
        label="MobiCash",
        kind="payment",
        credentials=(
            CredentialField("merchant_id", label=gettext_lazy("Merchant ID"), secret=False),
            CredentialField("api_key", label=gettext_lazy("API key")),
        ),
        health=HealthCheck(path="health", timeout=5.0),
        timeout=20.0,
        sandbox_path="payment/mobicash/api/v1/",
    )
    auth_codes = frozenset({"INVALID_API_KEY", "UNKNOWN_MERCHANT"})

    def _headers(self):
        return {"X-API-KEY": self.credential("api_key")}

    def begin(self, payment):
        self.ensure_enabled()
        body = {"merchant_id": self.credential("merchant_id"), "mobile_number": self.payer_phone(payment),
                "amount": f"{self.amount(payment):.3f}", "currency": CURRENCY, "invoice_no": payment.reference}
        answer = self.rest_call("POST", "transaction/verify", operation="verify", idempotent=True, json=body,
                                headers=self._headers())
        result = _result(answer, "verify")
        process_id = _text(result.get("process_id"))
        if not process_id:
            raise ProviderProtocolError("MobiCash's verify answer has no process_id.", payload=answer, sent=True)
        return Checkout(next_step=NextStep.OTP, provider_reference=process_id[:100], state=State.PENDING,
                        data={"phone": body["mobile_number"], "expires_in": _text(result.get("expires_in"))[:10]},
                        instructions=_("Enter the code MobiCash sent to %s by SMS.") % body["mobile_number"])

    def confirm(self, payment, code):
        process_id = _text(getattr(payment, "provider_reference", ""))
        if not process_id:
            raise ProviderValidationError(_("This MobiCash payment was never begun."), sent=False)
        body = {"merchant_id": self.credential("merchant_id"), "process_id": process_id,
                "invoice_no": payment.reference, "otp": str(code or "").strip()}
        answer = self.write("confirm", lambda: self.rest_call("POST", "transaction/confirm", operation="confirm",
                                                              idempotent=False, json=body, headers=self._headers()))
        try:
            status = self._status(_result(answer, "confirm"))
        except ProviderProtocolError as exc:
            raise UnknownOutcome(str(exc), payload=answer, sent=True) from None
        if status.state not in (State.PAID, State.FAILED, State.EXPIRED, State.CANCELLED) or (
                status.state == State.PAID and not status.provider_reference):
            # Neither paid with a transaction nor refused: as uncertain as a lost answer.
            raise UnknownOutcome(_("MobiCash's confirm answer says neither paid nor failed."), payload=answer,
                                 sent=True)
        return status

    def status(self, payment):
        params = {"merchant_id": self.credential("merchant_id"), "invoice_no": payment.reference}
        try:
            answer = self.rest_call("GET", "transaction/status", operation="status", idempotent=True, params=params,
                                    headers=self._headers())
        except ProviderValidationError as exc:
            if (exc.payload or {}).get("code") == "NOT_FOUND":
                # No session for our reference: the verify never arrived, so no money moved.
                return ProviderStatus(state=State.FAILED, message=exc.provider_message or "NOT_FOUND",
                                      details={"not_found": True})
            raise
        return self._status(_result(answer, "status"))

    def refund(self, payment, refund):
        raise NotSupported(_("MobiCash refunds are made in MobiCash's merchant portal."))

    @staticmethod
    def _status(result):
        state = wire_state(result.get("state"))
        if state is None:
            raise ProviderProtocolError(f"MobiCash sent an unknown state {_text(result.get('state'))[:30]!r}.",
                                        payload=result, sent=True)
        details = {}
        refunded = decimal_amount(result.get("refunded_amount"))
        if refunded:
            details["refunded_amount"] = str(refunded)
        return ProviderStatus(state=state, amount=decimal_amount(result.get("amount")),
                              currency=_text(result.get("currency")).upper()[:3] or CURRENCY,
                              provider_reference=_text(result.get("transaction_id"))[:100],
                              message=_text(result.get("message"))[:200], details=details)


def _result(answer, operation):
    result = answer.get("result")
    if answer.get("status") != "success" or not isinstance(result, dict):
        raise ProviderProtocolError(f"MobiCash's {operation} answer is not a success with a result.", payload=answer,
                                    sent=True)
    return result

