"""The seed's banks and ways to pay (its section on payment gateways and banks), and their installer.

Migration 0002 installs them through `install`; a row that exists is left as operators edited it, so
running it again (or on a database that already has them) changes nothing. A later change of this
table reaches existing databases only through a new migration calling `install` with `update=`.
"""

from decimal import Decimal

from .interface import Method

# code, Arabic name, English name, type, cards, online banking, branches (the seed's supportedBanks).
BANKS = (
    ("NBC", "البنك الوطني التجاري", "National Commercial Bank", "commercial", ["mada", "visa", "mastercard"], True,
     ["طرابلس", "بنغازي", "مصراتة"]),
    ("JUM", "بنك الجمهورية", "Jumhouria Bank", "commercial", ["mada", "visa", "mastercard"], True,
     ["طرابلس", "بنغازي", "سبها"]),
    ("SAH", "بنك الصحراء", "Sahara Bank", "commercial", ["mada", "visa"], True, ["طرابلس", "بنغازي"]),
    ("WAH", "بنك الوحدة", "Wahda Bank", "commercial", ["mada", "visa", "mastercard"], True,
     ["طرابلس", "بنغازي", "مصراتة", "الزاوية"]),
    ("BCD", "بنك التجارة والتنمية", "Bank of Commerce and Development", "development", ["mada", "visa"], True,
     ["طرابلس", "بنغازي"]),
)

# The seed's paymentMethods, and the wallets it announces as planned (digitalWallets.enabled: false).
METHODS = (
    {"code": Method.CARD_CREDIT, "name_ar": "بطاقة ائتمان", "name_en": "Credit card", "adapter": "moamalat",
     "networks": ["visa", "mastercard"], "currencies": ["LYD", "USD"],
     "min_amount": Decimal("1.000"), "max_amount": Decimal("50000.000")},
    {"code": Method.CARD_DEBIT, "name_ar": "بطاقة خصم", "name_en": "Debit card", "adapter": "moamalat",
     "networks": ["mada"], "currencies": ["LYD"],
     "min_amount": Decimal("0.500"), "max_amount": Decimal("25000.000")},
    {"code": Method.BANK_TRANSFER, "name_ar": "تحويل بنكي", "name_en": "Bank transfer", "adapter": "bank_transfer",
     "currencies": ["LYD"], "processing_time": "1-3 أيام عمل", "banks": ["NBC", "JUM", "SAH", "WAH"]},
    {"code": Method.COD, "name_ar": "الدفع عند التسليم", "name_en": "Cash on delivery",
     "adapter": "cash_on_delivery", "currencies": ["LYD"]},
    {"code": Method.MOBICASH, "name_ar": "موبي كاش", "name_en": "MobiCash", "adapter": "mobicash",
     "currencies": ["LYD"], "enabled": False, "planned": True},
    {"code": Method.SADAD, "name_ar": "سداد", "name_en": "Sadad", "adapter": "sadad",
     "currencies": ["LYD"], "enabled": False, "planned": True},
    {"code": Method.ONEPAY, "name_ar": "ون باي", "name_en": "1Pay", "adapter": "onepay",
     "currencies": ["LYD"], "enabled": False, "planned": True},
)


def install(Bank, PaymentMethod, using="default"):
    """Create the banks and methods that do not exist yet (historical or real models). Returns how
    many rows were created."""
    created = 0
    banks = Bank.objects.using(using)
    for position, (code, name_ar, name_en, kind, cards, online, branches) in enumerate(BANKS, start=1):
        _bank, made = banks.get_or_create(code=code, defaults={
            "name_ar": name_ar, "name_en": name_en, "type": kind, "cards": cards, "online_banking": online,
            "branches": branches, "active": True, "position": position})
        created += made
    methods = PaymentMethod.objects.using(using)
    for position, spec in enumerate(METHODS, start=1):
        spec = dict(spec)
        bank_codes = spec.pop("banks", [])
        method, made = methods.get_or_create(code=spec.pop("code"), defaults={**spec, "position": position})
        if made:
            method.banks.set(banks.filter(code__in=bank_codes))
        created += made
    return created
