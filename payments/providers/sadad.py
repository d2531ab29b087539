"""Sadad: SOAP 1.1 over zeep, initiate → one-time code → confirm → status, refunds.

Sadad publishes no merchant API. The seed says SOAP; PROTOCOLS.md gives the flow (Sadad's verify
takes the mobile number, the birth year and the amount, then a one-time code confirms). The
contract we built on both is payments/wsdl/sadad.wsdl, shipped with the code (zeep reads it from
disk, never from the provider), implemented by payments/sandbox/sadad.py and described in
docs/protocols/wallets.md:

  InitiatePayment   MerchantId, Username, Password, MerchantReference (ours), MobileNumber
                    (+2189XXXXXXXX), BirthYear, Amount (xsd:decimal dinars, "12.500"), Currency
                    -> SessionId, Status "otp_sent", ExpiresInSeconds, Message
  ConfirmPayment    … MerchantReference, SessionId, OTP -> PaymentResult
  GetPaymentStatus  … MerchantReference -> PaymentResult (Status "NOT_FOUND" for a reference Sadad
                    never saw)
  RefundPayment     … MerchantReference, RefundReference (ours), Amount -> RefundId, Status, Amount
  PaymentResult:    MerchantReference, Status, SessionId, TransactionId, Amount, RefundedAmount,
                    Currency, Message
  A refusal is a SOAP Fault (HTTP 500, detail SadadFault {Code, Message}): an authentication fault
  is a `ProviderAuthError`, any other (a wrong code) a `ProviderValidationError` with Sadad's words.

The payer's birth year is the buyer's input, given to `begin` in `payment.provider_data["birth_year"]`
(or a `payer_birth_year` attribute). MerchantReference makes a resent InitiatePayment the same
session, and it is retried as a read (it moves no money); ConfirmPayment and RefundPayment are sent
once, a lost answer being an `UnknownOutcome` that `status` settles.

The transport is swappable, as PROTOCOLS.md asks (Libyan merchants may reach Sadad through an
aggregator's REST API instead): `SadadSoap` holds the four operations as plain dicts in and out; the
adapter's logic reads only those dicts.
"""

from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.adapters import CredentialField, HealthCheck, ProviderMeta
from integrations.errors import ProviderProtocolError, ProviderValidationError, UnknownOutcome

from ..interface import Checkout, Method, NextStep, ProviderStatus, RefundResult, State
from .wallet import CURRENCY, WalletGateway, decimal_amount, wire_state
from .wallet import wire_text as _text

WSDL = Path(__file__).resolve().parent.parent / "wsdl" / "sadad.wsdl"
NOT_FOUND = "NOT_FOUND"
FINAL = (State.PAID, State.FAILED, State.EXPIRED, State.CANCELLED)


class SadadSoap:
    """Sadad's four operations over SOAP (zeep, traced by the core's `SoapClient`)."""

    def __init__(self, integration, merchant):
        from integrations.transports.soap import SoapClient

        self.client = SoapClient(integration, WSDL, safe=("GetPaymentStatus", "InitiatePayment"))
        self.merchant = merchant  # MerchantId, Username, Password

    def call(self, operation, **fields):
        return self.client.call(operation, **self.merchant, **fields) or {}


class Sadad(WalletGateway):
    methods = (Method.SADAD,)
    meta = ProviderMeta(
        label="Sadad",
        kind="payment",
        credentials=(
            CredentialField("merchant_id", label=gettext_lazy("Merchant ID"), secret=False),
            CredentialField("username", label=gettext_lazy("User name"), secret=False),
            CredentialField("password", label=gettext_lazy("Password")),
        ),
        health=HealthCheck(timeout=5.0),
        timeout=20.0,
        sandbox_path="payment/sadad/MerchantService.svc",
    )

    @property
    def transport(self):
        merchant = {"MerchantId": self.credential("merchant_id"), "Username": self.credential("username"),
                    "Password": self.credential("password")}
        return SadadSoap(self.integration, merchant)

    def birth_year(self, payment):
        value = getattr(payment, "payer_birth_year", None) or (getattr(payment, "provider_data", None) or {}).get(
            "birth_year")
        text = _text(value)
        year = int(text) if text.isdigit() and len(text) == 4 else 0
        if not 1900 <= year <= timezone.now().year:
            raise ProviderValidationError(_("Sadad needs the payer's year of birth (four digits)."), sent=False)
        return year

    def begin(self, payment):
        self.ensure_enabled()
        phone, amount = self.payer_phone(payment), self.amount(payment)
        answer = self.transport.call("InitiatePayment", MerchantReference=payment.reference, MobileNumber=phone,
                                     BirthYear=self.birth_year(payment), Amount=amount, Currency=CURRENCY)
        session = _text(answer.get("SessionId"))
        if not session:
            raise ProviderProtocolError("Sadad's InitiatePayment answer has no SessionId.", sent=True)
        return Checkout(next_step=NextStep.OTP, provider_reference=session[:100], state=State.PENDING,
                        data={"phone": phone, "expires_in": _text(answer.get("ExpiresInSeconds"))[:10]},
                        instructions=_("Enter the code Sadad sent to %s by SMS.") % phone)

    def confirm(self, payment, code):
        session = _text(getattr(payment, "provider_reference", ""))
        if not session:
            raise ProviderValidationError(_("This Sadad payment was never begun."), sent=False)
        transport = self.transport
        answer = self.write("ConfirmPayment", lambda: transport.call(
            "ConfirmPayment", MerchantReference=payment.reference, SessionId=session, OTP=str(code or "").strip()))
        try:
            status = self._status(answer, payment.reference)
        except ProviderProtocolError as exc:
            raise UnknownOutcome(str(exc), sent=True) from None
        if status.state not in FINAL or (status.state == State.PAID and not status.provider_reference):
            raise UnknownOutcome(_("Sadad's ConfirmPayment answer says neither paid nor failed."), sent=True)
        return status

    def status(self, payment):
        answer = self.transport.call("GetPaymentStatus", MerchantReference=payment.reference)
        if _text(answer.get("Status")) == NOT_FOUND:
            # Sadad never saw the reference: no session, so no money moved.
            return ProviderStatus(state=State.FAILED, message=_text(answer.get("Message"))[:200] or NOT_FOUND,
                                  details={"not_found": True})
        return self._status(answer, payment.reference)

    def refund(self, payment, refund):
        amount = self.dinars(refund.amount)
        transport = self.transport
        answer = self.write("RefundPayment", lambda: transport.call(
            "RefundPayment", MerchantReference=payment.reference, RefundReference=refund.reference, Amount=amount))
        state = {"refunded": "refunded", "failed": "failed", "pending": "pending"}.get(_text(answer.get("Status")))
        refund_id = _text(answer.get("RefundId"))
        if state is None or (state == "refunded" and not refund_id):
            raise UnknownOutcome(_("Sadad's RefundPayment answer says neither done nor refused."), sent=True)
        return RefundResult(state=state, provider_reference=refund_id[:100], message=_text(answer.get("Message"))[:200])

    def check_health(self):
        # Sadad has no health URL: the cheapest real read is the status of a reference never used,
        # bounded like every probe of the health round (its time, no retries).
        transport = self.transport
        http = transport.client.http
        http.timeout = min(self.health.timeout, self.probe_timeout or self.health.timeout)
        http.retries = 0
        transport.call("GetPaymentStatus", MerchantReference="HEALTH-CHECK")

    @staticmethod
    def _status(answer, reference):
        state = wire_state(answer.get("Status"))
        if state is None:
            raise ProviderProtocolError(f"Sadad sent an unknown Status {_text(answer.get('Status'))[:30]!r}.",
                                        sent=True)
        if _text(answer.get("MerchantReference")) not in ("", reference):
            raise ProviderProtocolError("Sadad answered about another payment.", sent=True)
        details = {}
        refunded = decimal_amount(answer.get("RefundedAmount"))
        if refunded:
            details["refunded_amount"] = str(refunded)
        transaction = _text(answer.get("TransactionId"))[:100]
        return ProviderStatus(state=state, amount=decimal_amount(answer.get("Amount")),
                              currency=_text(answer.get("Currency")).upper()[:3] or CURRENCY,
                              provider_reference=transaction, message=_text(answer.get("Message"))[:200],
                              details=details)
