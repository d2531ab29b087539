"""The payments API's shapes (camelCase, integrations.api.naming).

Money is never a float: amounts are answered as strings with the currency's decimals (LYD 3, USD 2),
and read from a string ("125.500") or a JSON integer (125). A JSON number with a fraction (125.5) is
refused: it went through binary floating point in the client's JSON encoder and in ours, and a
payment must be for exactly the amount the merchant meant. Provider data (hashes, sessions, anything
a provider sent back) is never part of an answer; only the fields below, chosen one by one."""

import re
from decimal import ROUND_DOWN, Decimal

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations.api.naming import camelize_keys
from integrations.api.serializers import CamelCaseModelSerializer

from .interface import Method, NextStep
from .models import CURRENCIES, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from .services.methods import DECIMAL_PLACES

AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
AMOUNT_RE = re.compile(AMOUNT_PATTERN)
AMOUNT_SCHEMA = {"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN, "example": "125.500",
                 "description": "A decimal string with the currency's decimals: 3 for LYD, 2 for USD."}
METHOD_CHOICES = PaymentMethod._meta.get_field("code").choices


def money(amount, currency):
    """`amount` as the API writes it: the currency's decimal places (LYD 3, USD 2), never fewer
    digits than the value has (a USD refund of 1.005 stays 1.005 rather than being rounded away)."""
    if amount is None:
        return None
    amount = Decimal(amount)
    places = Decimal(1).scaleb(-DECIMAL_PLACES.get(currency, 3))
    shown = amount.quantize(places, rounding=ROUND_DOWN)
    return f"{shown if shown == amount else amount.quantize(Decimal('0.001')):f}"


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """An amount in: a decimal string, or a JSON integer; never a float."""

    default_error_messages = {
        "float": _("Send the amount as a string, e.g. \"125.500\": a number with a fraction loses exactness."),
        "invalid": _("Enter an amount, e.g. \"125.500\", with at most three decimals."),
    }

    def to_internal_value(self, data):
        if isinstance(data, float):
            self.fail("float")
        if isinstance(data, int) and not isinstance(data, bool) and 0 <= data < 10**15:
            return Decimal(data)
        if not isinstance(data, str) or not AMOUNT_RE.fullmatch(data.strip()):
            self.fail("invalid")
        return Decimal(data.strip())

    def to_representation(self, value):
        return str(value)


@extend_schema_field({"type": "string", "format": "decimal", "example": "125.500",
                      "description": "The currency's decimals: 3 for LYD, 2 for USD."})
class MoneyField(serializers.Field):
    """An amount out, in the currency of the object (`currency_from`: the path to it)."""

    def __init__(self, *, amount, currency_from="currency", **kwargs):
        self.amount, self.currency_from = amount, currency_from
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj):
        currency = obj
        for name in self.currency_from.split("."):
            currency = getattr(currency, name)
        return money(getattr(obj, self.amount), currency)


@extend_schema_field({"type": "integer", "minimum": 1900, "example": 1985,
                      "description": "The payer's year of birth, four digits (a JSON integer or a string)."})
class BirthYearField(serializers.Field):
    """A year of birth in: a JSON integer or a string of digits; its range is the service's check."""

    default_error_messages = {"invalid": _("Enter the payer's year of birth as four digits, e.g. 1985.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        text = str(data).strip()
        if not text.isascii() or not text.isdigit() or len(text) != 4:
            self.fail("invalid")
        return int(text)

    def to_representation(self, value):
        return value


class CamelInput(serializers.Serializer):
    def to_internal_value(self, data):
        return super().to_internal_value(camelize_keys(data))


# --- input -----------------------------------------------------------------------------------------
class PaymentInputSerializer(CamelInput):
    orderReference = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                           help_text=_("Your own order number."))
    amount = AmountField()
    currency = serializers.ChoiceField(choices=CURRENCIES)
    method = serializers.ChoiceField(choices=METHOD_CHOICES, help_text=_("See GET /api/payments/methods."))
    bankCode = serializers.CharField(max_length=8, required=False, allow_blank=True,
                                     help_text=_("The bank to transfer to (bank transfer): NBC, JUM, SAH, WAH."))
    payerPhone = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                       help_text=_("The wallet's phone number as +2189XXXXXXXX (wallets)."))
    payerBirthYear = BirthYearField(required=False, allow_null=True,
                                    help_text=_("The payer's year of birth (Sadad: required)."))

    def service_data(self):
        v = self.validated_data
        data = {"order_reference": v.get("orderReference", ""), "amount": v["amount"], "currency": v["currency"],
                "method": v["method"], "bank_code": v.get("bankCode", ""), "payer_phone": v.get("payerPhone", "")}
        if v.get("payerBirthYear") is not None:  # only when given: kept fingerprints of earlier bodies still match
            data["payer_birth_year"] = v["payerBirthYear"]
        return data


class RefundInputSerializer(CamelInput):
    amount = AmountField()
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ConfirmInputSerializer(CamelInput):
    code = serializers.CharField(max_length=12, help_text=_("The one-time code the wallet sent to the payer."))


class MethodsQuerySerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=CURRENCIES, required=False)


# --- output ----------------------------------------------------------------------------------------
class BankSerializer(serializers.Serializer):
    code = serializers.CharField()
    nameAr = serializers.CharField(source="name_ar")
    nameEn = serializers.CharField(source="name_en")


class MethodSerializer(serializers.Serializer):
    """A way to pay on offer now, with its limits (in the currency asked for, or three decimals)."""

    code = serializers.ChoiceField(choices=METHOD_CHOICES)
    nameAr = serializers.CharField(source="name_ar")
    nameEn = serializers.CharField(source="name_en")
    networks = serializers.ListField(child=serializers.CharField())
    currencies = serializers.ListField(child=serializers.CharField())
    minAmount = serializers.SerializerMethodField()
    maxAmount = serializers.SerializerMethodField()
    banks = serializers.SerializerMethodField()
    processingTime = serializers.CharField(source="processing_time")
    fallbackFor = serializers.CharField(source="fallback_for", help_text=_(
        "The adapter this method stands in for while it is unavailable (\"moamalat\"), or \"\"."))

    def _money(self, value):
        return money(value, self.context.get("currency") or "LYD")

    @extend_schema_field({"type": "string", "format": "decimal", "nullable": True})
    def get_minAmount(self, obj):
        return self._money(obj.min_amount)

    @extend_schema_field({"type": "string", "format": "decimal", "nullable": True})
    def get_maxAmount(self, obj):
        return self._money(obj.max_amount)

    @extend_schema_field(BankSerializer(many=True))
    def get_banks(self, obj):
        return BankSerializer([b for b in obj.banks.all() if b.active], many=True).data


class TransferSerializer(serializers.Serializer):
    reference = serializers.CharField(help_text=_("The reference the buyer quotes on the transfer."))
    bankCode = serializers.CharField()
    bankName = serializers.CharField()
    processingTime = serializers.CharField()


class WalletSerializer(serializers.Serializer):
    action = serializers.CharField(help_text=_("\"confirm\": POST the payer's one-time code to confirmUrl."))
    confirmUrl = serializers.CharField()
    phone = serializers.CharField()


class PaymentSerializer(CamelCaseModelSerializer):
    amount = MoneyField(amount="amount")
    refundedAmount = MoneyField(amount="refunded_amount")
    refundableAmount = MoneyField(amount="refundable_amount")
    method = serializers.ChoiceField(choices=METHOD_CHOICES)
    bankCode = serializers.CharField(source="bank_id", allow_null=True)
    statusDisplay = serializers.CharField(source="get_status_display")
    checkoutUrl = serializers.SerializerMethodField()
    transfer = serializers.SerializerMethodField()
    wallet = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = ["id", "reference", "publicId", "orderReference", "amount", "currency", "method", "bankCode",
                  "status", "statusDisplay", "nextStep", "instructions", "checkoutUrl", "transfer", "wallet",
                  "refundedAmount", "refundableAmount", "error", "expiresAt", "paidAt", "createdAt", "updatedAt"]
        read_only_fields = fields

    def _absolute(self, path):
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True,
                          "description": "The buyer's checkout page (addressed by publicId) while the payment "
                                         "is open."})
    def get_checkoutUrl(self, obj):
        if not obj.is_open:
            return None
        try:
            path = reverse("payment-checkout", args=[obj.public_id])
        except NoReverseMatch:  # the buyer's page is mounted by the checkout app; its documented address
            path = f"/pay/{obj.public_id}/"
        return self._absolute(path)

    @extend_schema_field(TransferSerializer(allow_null=True))
    def get_transfer(self, obj):
        if obj.method != Method.BANK_TRANSFER:
            return None
        data = obj.provider_data or {}
        bank = obj.bank
        return {"reference": str(data.get("transfer_reference") or obj.reference),
                "bankCode": obj.bank_id or "",
                "bankName": bank.local_name if bank else "",
                "processingTime": str(data.get("processing_time") or "")}

    @extend_schema_field(WalletSerializer(allow_null=True))
    def get_wallet(self, obj):
        if obj.next_step != NextStep.OTP:
            return None
        return {"action": "confirm" if obj.status == PaymentStatus.PENDING else "none",
                "confirmUrl": self._absolute(reverse("payment-payment-confirm", args=[obj.pk])),
                "phone": obj.payer_phone}


class RefundSerializer(CamelCaseModelSerializer):
    paymentId = serializers.IntegerField(source="payment_id")
    paymentReference = serializers.CharField(source="payment.reference")
    amount = MoneyField(amount="amount", currency_from="payment.currency")
    currency = serializers.ChoiceField(source="payment.currency", choices=CURRENCIES)
    status = serializers.ChoiceField(choices=RefundStatus.choices)
    statusDisplay = serializers.CharField(source="get_status_display")

    class Meta:
        model = Refund
        fields = ["id", "reference", "paymentId", "paymentReference", "amount", "currency", "status",
                  "statusDisplay", "reason", "providerReference", "error", "createdAt", "completedAt"]
        read_only_fields = fields
