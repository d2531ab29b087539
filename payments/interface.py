"""The one interface of payment adapters: what the payment services ask of any way to pay.

Each provider is one class implementing `PaymentGateway` and registered under its code in
`payments.apps.PaymentsConfig.adapters`: Moamalat (cards through the five banks), cash on delivery,
bank transfer, and the wallets MobiCash, Sadad (SOAP) and 1Pay. The services own the `Payment` and
`Refund` rows and their state; an adapter only speaks its provider's protocol and answers with the
plain values below, so that it can be tested without a database.

What an adapter reads of a payment (`payments.models.Payment`):
  reference     our merchant reference, unique, at most 30 characters of A-Z 0-9 and "-": what the
                provider echoes back (Moamalat's MerchantReference)
  amount        Decimal, three decimal places for LYD
  currency      "LYD" or "USD"
  method        a `Method` value
  bank_code     "NBC", "JUM", "SAH", "WAH", "BCD" or ""
  payer_phone   the wallet's phone number (E.164, "+2189…") or ""
  provider_reference   what the provider called it when it began (a wallet session, a system
                reference), "" before
  provider_data a JSON dict the adapter may fill in `begin` (returned in `Checkout.data`) and read back
  created_at, expires_at
and of a refund (`payments.models.Refund`): reference (ours, unique), amount, payment.

Every failure is an `integrations.errors.ProviderError` (with `sent` set as the core's transports set
it: a call that may have reached the provider is `sent=True`, and the service then leaves the payment
or refund `unknown` for reconciliation rather than failing it).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from integrations.adapters import Adapter


class Method:
    """The seed's payment methods (`payments.models.PaymentMethod` rows carry their limits)."""

    CARD_CREDIT = "card_credit"  # visa, mastercard: LYD and USD, 1.000 to 50,000.000
    CARD_DEBIT = "card_debit"  # mada: LYD, 0.500 to 25,000.000
    BANK_TRANSFER = "bank_transfer"  # NBC, JUM, SAH, WAH; 1-3 working days
    COD = "cod"
    MOBICASH = "mobicash"
    SADAD = "sadad"
    ONEPAY = "onepay"


class State:
    """Payment states (`payments.models.PaymentStatus` has the same values)."""

    INITIATED = "initiated"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    UNKNOWN = "unknown"


class NextStep:
    """What the buyer does next, as `Checkout.next_step`."""

    LIGHTBOX = "lightbox"  # open our checkout page, which shows the gateway's Lightbox
    TRANSFER = "transfer"  # pay by bank transfer quoting `Checkout.reference`
    OTP = "otp"  # enter the one-time code the wallet sent to the payer's phone, then confirm
    ON_DELIVERY = "on_delivery"  # pay the carrier in cash
    NONE = "none"


@dataclass(frozen=True)
class Checkout:
    """The answer of `begin`: what the buyer's page needs, and what the service keeps."""

    next_step: str
    provider_reference: str = ""  # kept on the payment as `provider_reference`
    data: dict = field(default_factory=dict)  # kept as `provider_data` (never secrets)
    instructions: str = ""  # shown to the buyer (translatable text)
    state: str = State.PENDING  # where the payment stands after `begin`


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says of one payment (`status`, `confirm`) or one notification."""

    state: str  # a `State` value: PAID, FAILED, PENDING, CANCELLED, REFUNDED...
    amount: Decimal | None = None  # as the provider reports it, in the payment's currency
    currency: str = ""
    provider_reference: str = ""  # Moamalat's SystemReference, a wallet's transaction id
    network_reference: str = ""
    message: str = ""  # the provider's own words (ActionCode, Message)
    details: dict = field(default_factory=dict)  # card mask, payer name... never secrets


@dataclass(frozen=True)
class Notification:
    """A verified notification, read by `parse_notification`."""

    merchant_reference: str  # our `Payment.reference`
    kind: str  # "sale", "refund", "void_sale", "void_refund"
    status: ProviderStatus
    occurred_at: object = None  # an aware datetime when the provider says when


@dataclass(frozen=True)
class RefundResult:
    state: str  # "refunded", "pending" or "failed"
    provider_reference: str = ""
    message: str = ""


class NotSupported(Exception):
    """The operation makes no sense for this way to pay (a one-time code for a card payment)."""


class PaymentGateway(Adapter):
    """A payment adapter. `methods` lists the `Method` values it serves."""

    methods: tuple[str, ...] = ()
    # Wallets the seed marks "planned" are off until an operator switches a row on
    # (configuration {"enabled": true}).
    planned: bool = False

    def begin(self, payment):
        """Start the payment at the provider; return a `Checkout`."""
        raise NotImplementedError

    def confirm(self, payment, code):
        """Complete a wallet payment with the payer's one-time code; return a `ProviderStatus`."""
        raise NotSupported

    def status(self, payment):
        """Ask the provider where the payment stands; return a `ProviderStatus` (reconciliation)."""
        raise NotImplementedError

    def refund(self, payment, refund):
        """Refund `refund.amount` of a paid payment; return a `RefundResult`."""
        raise NotSupported

    def parse_notification(self, payload):
        """A verified webhook body (dict) as a `Notification`; ValueError when it is not one."""
        raise NotSupported

    def handle_webhook(self, event):
        """The core's webhook task calls this with a stored, verified `WebhookEvent`."""
        from .services import apply_notification

        apply_notification(self.integration, self.parse_notification(event.payload), event=event)
