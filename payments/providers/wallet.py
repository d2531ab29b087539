"""What the three wallets (MobiCash, Sadad, 1Pay) share: the planned switch, the payer's phone, the
amount, and how a lost answer to a write is reported.

No wallet publishes a merchant API (PROTOCOLS.md, "Sadad, MobiCash…"): each wire format is ours,
built on the seed and on the aggregator flow PROTOCOLS.md describes — initiate with the payer's
mobile number and the amount, the wallet texts the payer a one-time code, confirm with that code,
then ask for the status. docs/protocols/wallets.md describes the three as built.

The seed marks the wallets planned: a row is off until an operator sets {"enabled": true} in its
configuration. Only `begin` is refused on a row that is off: a payment already begun can still be
confirmed, asked about and refunded, so that switching a wallet off never strands a payer's money.
"""

import json
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from integrations.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.http import raise_for_response

from ..interface import PaymentGateway, State

CURRENCY = "LYD"  # every wallet holds dinars only
QUANTUM = Decimal("0.001")
DEFAULT_EXPIRY_S = 600  # a code lives minutes (the simulators: 300 s)
# +218 then nine digits, mobile numbers starting with 9 (Almadar 91/93, Libyana 92/94, LTT 95).
_E164 = re.compile(r"\+2189[1-5][0-9]{7}")
_SEPARATORS = re.compile(r"[\s().-]")

# The wallets' state words (each simulator and docs/protocols/wallets.md use them) as our states.
STATES = {
    "pending": State.PENDING, "otp_sent": State.PENDING, "paid": State.PAID, "failed": State.FAILED,
    "expired": State.EXPIRED, "cancelled": State.CANCELLED, "refunded": State.REFUNDED,
    "partially_refunded": State.PARTIALLY_REFUNDED,
}


def e164(phone):
    """A Libyan mobile number in E.164 (+2189XXXXXXXX), from the forms a buyer types (09…, 2189…,
    002189…, +218 9…); None when it is not one."""
    text = _SEPARATORS.sub("", str(phone or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("218"):
        text = "+" + text
    elif text.startswith("09"):
        text = "+218" + text[1:]
    return text if _E164.fullmatch(text) else None


def wire_text(value):
    """A scalar of an untrusted answer as stripped text; "" for nothing, a list or an object."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()


def wire_state(value):
    """A wallet's state word as a `State`; None when it is none we know."""
    return STATES.get(str(value or "").strip().lower())


def decimal_amount(value):
    """A wire amount in dinars ("12.500", 12.5 read as text) as a Decimal of three places; None when
    it is not a non-negative amount."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(QUANTUM):
        return None
    return amount.quantize(QUANTUM)


class WalletGateway(PaymentGateway):
    """The base of the wallet adapters. Subclasses set `methods`, `meta` and speak their protocol."""

    planned = True

    @property
    def name(self):
        return self.meta.label

    def expiry(self, now):
        """When a payment begun now expires (`payments.services.checkout` asks): a wallet's code
        lives minutes, not the checkout's default; configuration `expiry_s` (default 600)."""
        try:
            seconds = float(self.config.get("expiry_s") or DEFAULT_EXPIRY_S)
        except (TypeError, ValueError):
            seconds = DEFAULT_EXPIRY_S
        return now + timedelta(seconds=seconds if seconds > 0 else DEFAULT_EXPIRY_S)

    @property
    def enabled(self):
        return self.config.get("enabled") is True

    def ensure_enabled(self):
        if not self.enabled:
            raise ProviderValidationError(
                _("%(wallet)s is a planned wallet and is switched off for this provider row: an operator "
                  "turns it on with {\"enabled\": true} in the row's configuration.") % {"wallet": self.name},
                sent=False)

    def credential(self, name):
        value = str(self.credentials.get(name) or "").strip()
        if not value:
            raise ProviderAuthError(_("The %(wallet)s row has no %(field)s.") % {"wallet": self.name, "field": name},
                                    sent=False)
        return value

    def payer_phone(self, payment):
        phone = e164(getattr(payment, "payer_phone", ""))
        if phone is None:
            raise ProviderValidationError(
                _("%(wallet)s needs the payer's Libyan mobile number (+2189XXXXXXXX).") % {"wallet": self.name},
                sent=False)
        return phone

    def amount(self, payment):
        """The payment's amount in dinars, checked: dinars only, positive, at most three places."""
        if payment.currency != CURRENCY:
            raise ProviderValidationError(
                _("%(wallet)s takes LYD only, not %(currency)s.") % {"wallet": self.name, "currency": payment.currency},
                sent=False)
        return self.dinars(payment.amount)

    def dinars(self, value):
        """An amount checked for the wire: positive, at most three decimal places."""
        amount = decimal_amount(value)
        if amount is None or amount <= 0:
            raise ProviderValidationError(
                _("%(amount)s LYD cannot be sent to %(wallet)s.") % {"amount": value, "wallet": self.name},
                sent=False)
        return amount

    def lost(self, exc, operation):
        """A write's error as the service must see it: an outage or an unreadable answer after the
        request left us may hide a done payment or refund, so it is an `UnknownOutcome`. A refusal
        (a wrong code, bad credentials, a SOAP fault) is an answer: nothing was done."""
        if exc.sent is not True or not isinstance(exc, ProviderUnavailable | ProviderProtocolError):
            return exc
        return UnknownOutcome(
            _("%(wallet)s's answer to %(operation)s was lost or unreadable (%(error)s): the outcome is unknown.")
            % {"wallet": self.name, "operation": operation, "error": exc},
            status_code=exc.status_code, sent=True)

    def write(self, operation, call):
        """Run `call()`, a write sent once, mapping a lost answer to `UnknownOutcome`."""
        try:
            return call()
        except ProviderError as exc:
            mapped = self.lost(exc, operation)
            if mapped is exc:
                raise
            raise mapped from exc

    # --- JSON over HTTP (MobiCash, 1Pay) --------------------------------------------------------
    auth_codes = frozenset()  # error codes that mean our credentials were refused

    def rest_call(self, method, path, *, operation, idempotent, **kwargs):
        """One JSON call: the answer's object, or the mapped error. Both REST wallets put a refusal
        in an `error` object ({"code", "message"}) with a 4xx status."""
        response = self.client.request(method, path, operation=operation, idempotent=idempotent,
                                       raise_for_status=False, **kwargs)
        status = response.status_code
        if status >= 500 or status == 429 or 300 <= status < 400:
            raise_for_response(response)
        text = response.text or ""
        try:
            answer = json.loads(text, parse_float=Decimal) if text.strip() else None
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            if status in (401, 403):
                raise ProviderAuthError(_("%(wallet)s refused our credentials (HTTP %(status)d).")
                                        % {"wallet": self.name, "status": status}, status_code=status, sent=True)
            kind = "an HTML page" if text.lstrip()[:1] == "<" else "something that is not a JSON object"
            raise ProviderProtocolError(f"{self.name} answered {operation} with {kind} (HTTP {status}).",
                                        status_code=status, sent=True)
        error = answer.get("error")
        if status >= 400 or error:
            error = error if isinstance(error, dict) else {"message": error}
            code = str(error.get("code") or "")[:40]
            message = str(error.get("message") or code or f"HTTP {status}")[:500]
            kind = ProviderAuthError if status in (401, 403) or code in self.auth_codes else ProviderValidationError
            raise kind(provider_message=message, status_code=status, payload={"code": code, "message": message},
                       sent=True)
        return answer
