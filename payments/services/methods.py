"""Which ways to pay are on offer, and the checks a new payment must pass against its method's row."""

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.adapters import adapter_class
from integrations.errors import UnknownAdapter
from integrations.models import ExternalIntegration, Health, Kind, Status
from integrations.selection import alternatives_for

from ..interface import Method
from ..models import Bank, PaymentMethod

DECIMAL_PLACES = {"LYD": 3, "USD": 2}  # what the gateway can carry (ISO 4217 minor units)
WALLETS = (Method.MOBICASH, Method.SADAD, Method.ONEPAY)
PHONE = re.compile(r"^\+2189[0-9]{8}$")  # a Libyan mobile in E.164, as the wallets take it
ORDER_REFERENCE_MAX = 100
BIRTH_YEAR = re.compile(r"^[0-9]{4}$")
BIRTH_YEAR_MIN = 1900  # Sadad's own lower bound (payments.providers.sadad); the upper is this year
# Ways to pay whose provider needs the payer's year of birth (Sadad's verify step).
NEEDS_BIRTH_YEAR = (Method.SADAD,)


def is_own_method(code):
    """A way to pay of ours (cash on delivery, bank transfer): no provider row, always usable."""
    try:
        return bool(getattr(adapter_class(code), "own_method", False))
    except UnknownAdapter:
        return False


def provider_row(code, owner):
    """The row a payment of `owner` through adapter `code` goes through: the merchant's own usable row
    first, else the platform's (lowest priority first); None when none is usable."""
    rows = (ExternalIntegration.objects.filter(kind=Kind.PAYMENT, code=code, status=Status.ACTIVE)
            .exclude(health_status=Health.UNHEALTHY)
            .filter(Q(owner=owner) | Q(owner__isnull=True) if owner is not None else Q(owner__isnull=True)))
    return rows.order_by(F("owner").asc(nulls_last=True), "priority", "created_at").first()


def adapter_usable(code, owner=None):
    return is_own_method(code) or provider_row(code, owner) is not None


def available_methods(owner=None, currency=None):
    """The enabled methods a buyer may choose now, in the operators' order. A method whose provider is
    unusable (Moamalat down) is left out and its alternatives of the fallback table
    (integrations.selection: cash on delivery, bank transfer) are offered in its place; those carry
    `fallback_for` (the adapter code they stand in for), the others "" ."""
    methods = list(PaymentMethod.objects.filter(enabled=True).prefetch_related("banks"))
    if currency:
        methods = [m for m in methods if currency in (m.currencies or [])]
    usable = {code: adapter_usable(code, owner) for code in {m.adapter for m in methods}}
    offered, fallbacks = [], {}
    for method in methods:
        method.fallback_for = ""
        if usable[method.adapter]:
            offered.append(method)
        else:
            for alternative in alternatives_for(method.adapter):
                fallbacks.setdefault(alternative, method.adapter)
    for method in offered:
        if method.adapter in fallbacks:
            method.fallback_for = fallbacks[method.adapter]
    return offered


def _amount(value, currency, errors):
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        errors["amount"] = [_("Enter an amount, e.g. 125.500.")]
        return None
    if not amount.is_finite():
        errors["amount"] = [_("Enter an amount, e.g. 125.500.")]
        return None
    places = DECIMAL_PLACES.get(currency, 3)
    if amount != amount.quantize(Decimal(1).scaleb(-places), rounding="ROUND_DOWN"):
        errors["amount"] = [_("%(currency)s amounts have at most %(places)d decimal places.")
                            % {"currency": currency, "places": places}]
        return None
    if amount <= 0:
        errors["amount"] = [_("The amount must be greater than zero.")]
        return None
    return amount.quantize(Decimal("0.001"))


def _birth_year(value, method, errors):
    """The payer's year of birth as an int, None when not given; required by Sadad only."""
    text = "" if value is None else str(value).strip()
    if not text:
        if method in NEEDS_BIRTH_YEAR:
            errors["payer_birth_year"] = [_("Sadad needs the payer's year of birth (four digits, e.g. 1985).")]
        return None
    this_year = timezone.localdate().year
    if not BIRTH_YEAR.match(text) or not BIRTH_YEAR_MIN <= int(text) <= this_year:
        errors["payer_birth_year"] = [_("Enter the payer's year of birth as four digits, from %(min)d to %(max)d.")
                                      % {"min": BIRTH_YEAR_MIN, "max": this_year}]
        return None
    return int(text)


def validate_payment(owner, *, amount, currency, method, bank_code="", payer_phone="", order_reference="",
                     payer_birth_year=None):
    """The cleaned fields of a new payment, or ValidationError({field: [messages]}) naming the limit
    that was crossed. Returns a dict with `method` as its PaymentMethod row and `bank` as a Bank;
    `payer_birth_year` is kept (an int) only for the ways to pay that need it, None otherwise."""
    errors = {}
    currency = str(currency or "").strip().upper()
    row = PaymentMethod.objects.filter(code=str(method or "").strip()).prefetch_related("banks").first()
    if row is None:
        raise ValidationError({"method": [_("Unknown payment method.")]})
    if not row.enabled:
        errors["method"] = [_("%(method)s is not available.") % {"method": row.local_name or row.code}]
    if currency not in (row.currencies or []):
        errors["currency"] = [_("%(method)s takes %(currencies)s only.")
                              % {"method": row.local_name or row.code, "currencies": ", ".join(row.currencies or [])}]
    value = _amount(amount, currency, errors)
    if value is not None and "currency" not in errors:
        if row.min_amount is not None and value < row.min_amount:
            errors["amount"] = [_("The minimum for %(method)s is %(limit)s %(currency)s.")
                                % {"method": row.local_name or row.code, "limit": row.min_amount, "currency": currency}]
        elif row.max_amount is not None and value > row.max_amount:
            errors["amount"] = [_("The maximum for %(method)s is %(limit)s %(currency)s.")
                                % {"method": row.local_name or row.code, "limit": row.max_amount, "currency": currency}]
    bank = None
    bank_code = str(bank_code or "").strip().upper()
    allowed = [b for b in row.banks.all() if b.active]
    if allowed:
        bank = next((b for b in allowed if b.code == bank_code), None)
        if bank is None:
            errors["bank_code"] = [
                _("Choose one of %(banks)s.") % {"banks": ", ".join(b.code for b in allowed)} if bank_code
                else _("Choose the bank to transfer to: %(banks)s.") % {"banks": ", ".join(b.code for b in allowed)}]
    elif bank_code:
        bank = Bank.objects.filter(code=bank_code, active=True).first()
        if bank is None:
            errors["bank_code"] = [_("Unknown bank.")]
    payer_phone = str(payer_phone or "").strip()
    if row.code in WALLETS and not payer_phone:
        errors["payer_phone"] = [_("The wallet's phone number is required.")]
    elif payer_phone and not PHONE.match(payer_phone):
        errors["payer_phone"] = [_("Enter a Libyan mobile number as +2189XXXXXXXX.")]
    birth_year = _birth_year(payer_birth_year, row.code, errors)
    order_reference = str(order_reference or "").strip()
    if len(order_reference) > ORDER_REFERENCE_MAX:
        errors["order_reference"] = [_("At most %d characters.") % ORDER_REFERENCE_MAX]
    if errors:
        raise ValidationError(errors)
    return {"amount": value, "currency": currency, "method": row, "bank": bank, "payer_phone": payer_phone,
            "order_reference": order_reference,
            "payer_birth_year": birth_year if row.code in NEEDS_BIRTH_YEAR else None}
