"""Moamalat: card payments through the five banks (Lightbox checkout, notifications, server API).

The wire format lives here and in `payments.moamalat_hash`; docs/protocols/moamalat.md describes it.

- Checkout needs no server call: our page (`payments.checkout`) loads the environment's
  `lightbox.js` and hands it `lightbox_configuration(payment)`, signed here.
- Notifications arrive at /webhooks/payment/moamalat/ (the platform's row) or
  /webhooks/payment/moamalat/<row id>/ (a merchant's row): the seed's `paymentStatus` and
  `refundStatus` webhooks are that one URL, `TxnType` telling them apart. `verify_webhook` checks the
  SecureHash (notification key), the terminal and the transaction time; the core stores and
  de-duplicates; `handle_webhook` (the worker) applies them.
- `status` asks FilterTransactions; `refund` sends RefundTransaction, once (never retried).

Amounts on the wire are integers in the currency's minor unit (dirhams: LYD x 1000). A decimal
with a point is read as dinars, in case a gateway answer formats it (the public material does not
pin every answer's unit). The terminal has one currency (configuration `currency`, LYD by default).
"""

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.adapters import CredentialField, HealthCheck, ProviderMeta
from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.http import raise_for_response

from .. import moamalat_hash
from ..interface import (
    Checkout,
    Method,
    NextStep,
    Notification,
    PaymentGateway,
    ProviderStatus,
    RefundResult,
    State,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Environment:
    api: str  # base of the server API (FilterTransactions, RefundTransaction)
    lightbox: str  # the Lightbox script our checkout page loads


ENVIRONMENTS = {
    "test": Environment(api="https://tnpg.moamalat.net/cube/paylink.svc/api/",
                        lightbox="https://tnpg.moamalat.net:6006/js/lightbox.js"),
    "production": Environment(api="https://npg.moamalat.net/cube/paylink.svc/api/",
                              lightbox="https://npg.moamalat.net:6006/js/lightbox.js"),
}
DEFAULT_ENVIRONMENT = "test"

MINOR_UNITS = {"LYD": 3, "USD": 2}  # ISO 4217 exponents
NUMERIC_CURRENCY = {"434": "LYD", "840": "USD"}
TXN_KINDS = {"1": "sale", "2": "refund", "3": "void_sale", "4": "void_refund"}
APPROVED_STATE = {"sale": State.PAID, "refund": State.REFUNDED, "void_sale": State.CANCELLED,
                  "void_refund": State.PAID}
APPROVED = "00"

# How old (or early) a notification's own transaction time may be. The hash covers that time, so a
# captured notification cannot be made younger; the window bounds how long one stays usable.
DEFAULT_NOTIFICATION_MAX_AGE_S = 24 * 3600
NOTIFICATION_MAX_SKEW_S = 15 * 60
TIMEZONE = "Africa/Tripoli"  # DateTimeLocalTrxn is the terminal's local time

_DIGITS = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,15}\.[0-9]{1,3}")


def to_minor(amount, currency):
    """`amount` (Decimal) in the currency's minor unit, an int; ValueError if it has more decimals."""
    scaled = Decimal(amount).scaleb(MINOR_UNITS[currency])
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"{amount} {currency} is not a whole number of minor units.")
    return int(scaled)


def from_wire(value, currency):
    """A wire amount as a Decimal in the currency: digits are minor units, "12.500" is dinars.
    None when it is neither."""
    if isinstance(value, bool) or currency not in MINOR_UNITS:
        return None
    text = str(value).strip() if value is not None else ""
    places = MINOR_UNITS[currency]
    quantum = Decimal(1).scaleb(-places)
    if _DIGITS.fullmatch(text):
        return Decimal(int(text)).scaleb(-places).quantize(quantum)
    if _DECIMAL.fullmatch(text):
        try:
            return Decimal(text).quantize(quantum)
        except InvalidOperation:
            return None
    return None


def wire_currency(value):
    text = str(value or "").strip().upper()
    return NUMERIC_CURRENCY.get(text, text if text in MINOR_UNITS else "")


def parse_local_time(value, tz):
    """DateTimeLocalTrxn (yyyyMMddHHmm or yyyyMMddHHmmss, the terminal's local time) as an aware
    datetime; None when it is neither."""
    text = str(value or "").strip()
    formats = {12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not text.isascii() or not text.isdigit() or len(text) not in formats:
        return None
    try:
        return datetime.strptime(text, formats[len(text)]).replace(tzinfo=tz)
    except ValueError:
        return None


def mask_account(value):
    """A card number as the gateway masks it (first six, last four); anything longer never kept."""
    text = str(value or "").strip()
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) >= 13 and digits == text:  # an unmasked card number: never stored
        return f"{digits[:6]}{'X' * (len(digits) - 10)}{digits[-4:]}"
    return text[:32]


class Moamalat(PaymentGateway):
    methods = (Method.CARD_CREDIT, Method.CARD_DEBIT)
    meta = ProviderMeta(
        label="Moamalat (cards)",
        kind="payment",
        credentials=(
            CredentialField("merchant_id", label=gettext_lazy("Merchant ID (MID)"), secret=False),
            CredentialField("terminal_id", label=gettext_lazy("Terminal ID (TID)"), secret=False),
            CredentialField("secure_key", label=gettext_lazy("Secure key (hex)")),
            CredentialField("notification_key", label=gettext_lazy("Notification key (hex)")),
        ),
        # The seed's 5000 ms; the check is a FilterTransactions call (the gateway has no health URL).
        health=HealthCheck(timeout=5.0),
        timeout=20.0,
        sandbox_path="moamalat/cube/paylink.svc/api/",
    )

    # --- configuration ------------------------------------------------------------------------
    @property
    def environment(self):
        name = str(self.config.get("environment") or DEFAULT_ENVIRONMENT)
        if name not in ENVIRONMENTS:
            raise ProviderValidationError(
                _("Moamalat's environment must be “test” or “production”, not “%s”.") % name[:40], sent=False)
        return name

    @property
    def api_base(self):
        """The row's base URL, else its environment's. A production row pointed at the test
        gateway (or the reverse) is refused: its payments would be play money, or real ones."""
        env = self.environment
        base = (self.integration.base_url or "").strip() or ENVIRONMENTS[env].api
        host = (urlsplit(base).hostname or "").lower()
        for other, urls in ENVIRONMENTS.items():
            if other != env and host == urlsplit(urls.api).hostname:
                raise ProviderValidationError(
                    _("This Moamalat row is set to the %(env)s environment but its URL is the %(other)s "
                      "gateway's.") % {"env": env, "other": other}, sent=False)
        return base.rstrip("/") + "/"

    @property
    def lightbox_url(self):
        url = str(self.config.get("lightbox_url") or ENVIRONMENTS[self.environment].lightbox)
        if not url.lower().startswith(("https://", "http://")):
            raise ProviderValidationError(_("lightbox_url must be an absolute http(s) URL."), sent=False)
        return url

    @property
    def currency(self):
        return str(self.config.get("currency") or "LYD").upper()

    @property
    def tz(self):
        return ZoneInfo(str(self.config.get("timezone") or TIMEZONE))

    def _credential(self, name):
        value = str(self.credentials.get(name) or "").strip()
        if not value:
            raise ProviderAuthError(_("The Moamalat row has no %s.") % name, sent=False)
        return value

    def local_time(self, when=None):
        return (when or timezone.now()).astimezone(self.tz).strftime("%Y%m%d%H%M")

    # --- checkout -------------------------------------------------------------------------------
    def _minor_amount(self, payment):
        if payment.currency != self.currency:
            raise ProviderValidationError(
                _("This Moamalat terminal takes %(terminal)s only, not %(currency)s.")
                % {"terminal": self.currency, "currency": payment.currency}, sent=False)
        try:
            return to_minor(payment.amount, payment.currency)
        except (ValueError, KeyError, InvalidOperation):
            raise ProviderValidationError(
                _("%(amount)s %(currency)s cannot be sent to Moamalat.")
                % {"amount": payment.amount, "currency": payment.currency}, sent=False) from None

    def begin(self, payment):
        """Nothing to call: the buyer's page signs and opens the Lightbox (payments.checkout)."""
        self._minor_amount(payment)
        self._credential("merchant_id"), self._credential("terminal_id"), self._credential("secure_key")
        data = {"environment": self.environment}
        public_id = getattr(payment, "public_id", None)
        if public_id:
            try:
                data["checkout_url"] = reverse("payment-checkout", args=[public_id])
            except NoReverseMatch:  # pragma: no cover - the route is part of the project
                pass
        return Checkout(next_step=NextStep.LIGHTBOX, data=data, state=State.PENDING,
                        instructions=_("Pay by card in Moamalat's secure window."))

    def lightbox_configuration(self, payment, when=None):
        """What our page passes to `Lightbox.Checkout.configure` (the callbacks are the page's)."""
        amount = self._minor_amount(payment)
        mid, tid = self._credential("merchant_id"), self._credential("terminal_id")
        trx_time = self.local_time(when)
        fields = {"Amount": amount, "DateTimeLocalTrxn": trx_time, "MerchantId": mid,
                  "MerchantReference": payment.reference, "TerminalId": tid}
        return {"MID": mid, "TID": tid, "AmountTrxn": amount, "MerchantReference": payment.reference,
                "TrxDateTime": trx_time, "SecureHash": self._sign("secure_key", fields)}

    def _sign(self, key_name, fields):
        try:
            return moamalat_hash.secure_hash(self._credential(key_name), fields)
        except moamalat_hash.BadKey as exc:
            raise ProviderAuthError(_("The Moamalat %(key)s is not usable: %(why)s") % {"key": key_name, "why": exc},
                                    sent=False) from None

    # --- server API -----------------------------------------------------------------------------
    def _api_fields(self):
        mid, tid = self._credential("merchant_id"), self._credential("terminal_id")
        now = self.local_time()
        fields = {"DateTimeLocalTrxn": now, "MerchantId": mid, "TerminalId": tid}
        return {"MerchantId": mid, "TerminalId": tid, "DateTimeLocalTrxn": now,
                "SecureHash": self._sign("secure_key", fields)}

    def _call(self, operation, body, *, idempotent, breaker=True):
        response = self.client.request("POST", self.api_base + operation, operation=operation, json=body,
                                       idempotent=idempotent, raise_for_status=False, breaker=breaker)
        status = response.status_code
        if status >= 500 or status == 429 or 300 <= status < 400:
            raise_for_response(response)
        text = response.text or ""
        try:
            answer = json.loads(text, parse_float=Decimal)
        except (ValueError, RecursionError):  # nested past the parser's depth: not an answer either
            answer = None
        if not isinstance(answer, dict):
            if status in (401, 403):
                raise ProviderAuthError(_("Moamalat refused our credentials (HTTP %d).") % status, status_code=status,
                                        sent=True)
            kind = "an HTML page" if text.lstrip()[:1] == "<" else "something that is not a JSON object"
            raise ProviderProtocolError(f"Moamalat answered {operation} with {kind} (HTTP {status}).",
                                        status_code=status, sent=True)
        if status >= 400:
            raise_for_response(response)
        return answer

    def _filter(self, reference, network_reference="", *, breaker=True):
        body = {**self._api_fields(), "MerchantReference": reference, "DisplayLength": 10, "DisplayStart": 0}
        if network_reference:
            body["NetworkReference"] = network_reference
        return self._call("FilterTransactions", body, idempotent=True, breaker=breaker)

    def status(self, payment):
        answer = self._filter(payment.reference, _network_reference(payment))
        return self.read_filter_answer(answer, payment.currency)

    def read_filter_answer(self, answer, currency):
        """A FilterTransactions answer as a `ProviderStatus` of the sale it lists (PROTOCOLS: approved
        when it lists one transaction and that one says "Approved")."""
        if answer.get("Success") is False:
            message = str(answer.get("Message") or "FilterTransactions refused")
            raise ProviderValidationError(provider_message=message, payload=answer, sent=True)
        try:
            count = int(answer.get("TotalCountAllTransaction") or 0)
        except (TypeError, ValueError):
            raise ProviderProtocolError("Moamalat's FilterTransactions answer has no usable "
                                        "TotalCountAllTransaction.", payload=answer, sent=True) from None
        rows = []
        for day in answer.get("Transactions") or []:
            rows.extend((day or {}).get("DateTransactions") or [] if isinstance(day, dict) else [])
        rows = [r for r in rows if isinstance(r, dict)]
        if count == 0:
            return ProviderStatus(state=State.PENDING, message="No transaction yet")
        if not rows:
            raise ProviderProtocolError("Moamalat counted transactions but listed none.", payload=answer, sent=True)
        sales = [r for r in rows if str(r.get("TransType") or "Sale").lower() == "sale"] or rows
        approved = [r for r in sales if str(r.get("Status") or "").lower() == "approved"]
        if count == 1 and approved:
            row = approved[0]
        elif len(approved) == 1:
            # A declined try then an approved one for the same reference: the approved sale is the
            # payment (the buyer retried in the same Lightbox).
            row = approved[0]
        elif approved:
            return ProviderStatus(state=State.UNKNOWN, message=f"{len(approved)} approved sales for one reference")
        else:
            row = sales[-1]
            return ProviderStatus(state=State.FAILED, message=str(row.get("Status") or "Declined"),
                                  provider_reference=_text(row.get("TransactionId") or row.get("SystemReference")))
        amount = from_wire(row.get("AmountTrxn", row.get("Amnt")), currency)
        return ProviderStatus(
            state=State.PAID, amount=amount, currency=wire_currency(row.get("Currency")) or currency,
            provider_reference=_text(row.get("TransactionId") or row.get("SystemReference")),
            network_reference=_text(row.get("RRN") or row.get("NetworkReference")),
            message="Approved", details={"card": mask_account(row.get("CardNo"))},
        )

    def refund(self, payment, refund):
        """RefundTransaction, sent once: a lost answer is the core's `unknown`, never a second try."""
        system_reference = _text(getattr(payment, "provider_reference", ""))
        network_reference = _network_reference(payment)
        if not system_reference and not network_reference:
            raise ProviderValidationError(
                _("Moamalat has not told us this payment's reference yet: it cannot be refunded."), sent=False)
        body = {**self._api_fields(), "AmountTrxn": self._refund_amount(payment, refund)}
        if system_reference:
            body["SystemReference"] = system_reference
        else:
            body["NetworkReference"] = network_reference
        answer = self._call("RefundTransaction", body, idempotent=False)
        return self.read_refund_answer(answer)

    def _refund_amount(self, payment, refund):
        try:
            return to_minor(refund.amount, payment.currency)
        except (ValueError, KeyError, InvalidOperation):
            raise ProviderValidationError(_("%s is not a refundable amount.") % refund.amount, sent=False) from None

    @staticmethod
    def read_refund_answer(answer):
        message = _text(answer.get("Message"))
        if answer.get("Success") is True:
            ref = _text(answer.get("RefNumber"))
            if not ref:
                # Accepted, but nothing to find it by later: as uncertain as a lost answer.
                raise UnknownOutcome("Moamalat accepted the refund without a RefNumber.", payload=answer, sent=True)
            return RefundResult(state="refunded", provider_reference=ref, message=message)
        if answer.get("Success") is False:
            return RefundResult(state="failed", message=message or "Refund refused")
        raise UnknownOutcome("Moamalat's refund answer says neither success nor failure.", payload=answer, sent=True)

    def check_health(self):
        # The cheapest real read: a filter for a reference that never exists, outside the breaker.
        self._filter("HEALTH-CHECK", breaker=False)

    # --- notifications --------------------------------------------------------------------------
    def verify_webhook(self, request):
        from integrations.webhooks import parse_payload

        try:
            payload = parse_payload(request.body, request.content_type or "")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        reason = self.notification_refusal(payload)
        if reason:
            logger.info("Moamalat notification refused for %s: %s", self.integration.pk, reason)
        return not reason

    def notification_refusal(self, payload, now=None):
        """Why `payload` is not an authentic, timely notification for this row; "" when it is."""
        if not isinstance(payload, dict):
            return "not an object"
        received = payload.get("SecureHash")
        if not isinstance(received, str) or not received:
            return "no SecureHash"
        mid, tid = (str(self.credentials.get(n) or "").strip() for n in ("merchant_id", "terminal_id"))
        if not mid or _text(payload.get("MerchantId")) != mid or _text(payload.get("TerminalId")) != tid:
            return "another terminal"
        fields = {name: _text(payload.get(name)) for name in moamalat_hash.NOTIFICATION_FIELDS}
        try:
            if not moamalat_hash.hash_matches(self.credentials.get("notification_key"), fields, received):
                return "SecureHash mismatch"
        except moamalat_hash.BadKey:
            logger.error("Moamalat row %s: the notification key is not hex; every notification is refused",
                         self.integration.pk)
            return "unusable notification key"
        when = parse_local_time(fields["DateTimeLocalTrxn"], self.tz)
        if when is None:
            return "unreadable DateTimeLocalTrxn"
        now = now or timezone.now()
        max_age = float(self.config.get("notification_max_age_s") or DEFAULT_NOTIFICATION_MAX_AGE_S)
        if when < now - timedelta(seconds=max_age):
            return "stale"
        if when > now + timedelta(seconds=NOTIFICATION_MAX_SKEW_S):
            return "from the future"
        return ""

    def webhook_event_id(self, payload):
        # The gateway sends no event id: its references and signed time identify one notification.
        parts = [_text(payload.get(n)) for n in ("TxnType", "SystemReference", "NetworkReference", "Amount",
                                                  "DateTimeLocalTrxn", "ActionCode")]
        return ("moamalat:" + ":".join(parts))[:200]

    def webhook_ack(self, duplicate):
        return {"Message": "Success", "Success": True}

    def handle_webhook(self, event):
        """A sale's outcome is believed only as FilterTransactions states it. The notification's hash
        leaves MerchantReference, TxnType, ActionCode and SystemReference unsigned, and the Lightbox
        hands the buyer's browser a signed body (the callback's data): a decline edited into "00", or
        one payment's approval renamed to another payment of the same amount, still verifies. When
        the gateway agrees (the state; for a payment also the amount and currency) the notification
        is applied as sent, with its details; otherwise the gateway's answer is. A failed ask
        raises: the event is kept as failed and reconciliation asks again."""
        from ..models import OPEN_STATES, Payment
        from ..services import apply_notification

        notification = self.parse_notification(event.payload)
        if notification.kind == "sale":
            payment = Payment.objects.filter(reference=notification.merchant_reference,
                                             integration=self.integration).first()
            if payment is not None and payment.status in OPEN_STATES:
                said, truth = notification.status, self.status(payment)
                money = (said.amount, said.currency) != (truth.amount, truth.currency)
                if said.state != truth.state or (truth.state == State.PAID and money):
                    notification = replace(notification, status=truth)
        apply_notification(self.integration, notification, event=event)

    def parse_notification(self, payload):
        kind = TXN_KINDS.get(_text(payload.get("TxnType")))
        if kind is None:
            raise ValueError(f"Unknown TxnType {_text(payload.get('TxnType'))[:10]!r}")
        reference = _text(payload.get("MerchantReference"))
        if not reference:
            raise ValueError("The notification has no MerchantReference")
        currency = wire_currency(payload.get("Currency"))
        amount = from_wire(payload.get("Amount"), currency)
        if amount is None:
            raise ValueError("The notification's Amount or Currency is unreadable")
        code = _text(payload.get("ActionCode"))
        state = APPROVED_STATE[kind] if code == APPROVED else State.FAILED
        message = " ".join(filter(None, [code, _text(payload.get("Message"))]))
        details = {k: v for k, v in (("paid_through", _text(payload.get("PaidThrough"))[:40]),
                                     ("card", mask_account(payload.get("PayerAccount"))),
                                     ("payer_name", _text(payload.get("PayerName"))[:100]),
                                     ("action_code", code[:10])) if v}
        status = ProviderStatus(state=state, amount=amount, currency=currency,
                                provider_reference=_text(payload.get("SystemReference"))[:100],
                                network_reference=_text(payload.get("NetworkReference"))[:100],
                                message=message[:200], details=details)
        return Notification(merchant_reference=reference, kind=kind, status=status,
                            occurred_at=parse_local_time(payload.get("DateTimeLocalTrxn"), self.tz))


def _text(value):
    if value is None or isinstance(value, bool | dict | list):
        return ""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    return str(value).strip()


def _network_reference(payment):
    return _text(getattr(payment, "network_reference", "") or (getattr(payment, "provider_data", None) or {}).get(
        "network_reference"))
