"""What the Moamalat tests share: the public test terminal (PROTOCOLS.md), rows pointing at a mocked
gateway or at the simulator, and a notification signed as the gateway signs it."""

import hmac
import json
from hashlib import sha256
from types import SimpleNamespace

from django.utils import timezone

from integrations.models import ExternalIntegration, Kind

MID = "10081014649"
TID = "99179395"
SECURE_KEY = "39636630633731362D663963322D346362642D386531662D633963303432353936373431"
# Another key than the checkout's, so that a test fails if the two are mixed up.
NOTIFICATION_KEY = "6E6F74696669636174696F6E2D6B65792D666F722D7465737473"
API = "https://tnpg.moamalat.net/cube/paylink.svc/api/"
TRIPOLI = timezone.get_fixed_timezone(120)  # Libya: UTC+2 all year


def independent_hash(hex_key, text):
    """The SecureHash computed here with hmac alone, not with the code under test."""
    return hmac.new(bytes.fromhex(hex_key), text.encode(), sha256).hexdigest().upper()


def local_now(delta_s=0):
    return (timezone.now() + timezone.timedelta(seconds=delta_s)).astimezone(TRIPOLI)


def notification(reference="ORDER-1", amount="10000", txn_type=1, action="00", when=None, key=NOTIFICATION_KEY,
                 mid=MID, tid=TID, system_reference="1233317", currency="434", **extra):
    when = when or local_now().strftime("%Y%m%d%H%M%S")
    body = {
        "MerchantId": mid, "TerminalId": tid, "DateTimeLocalTrxn": when, "TxnType": txn_type,
        "Message": "Approved" if action == "00" else "Declined", "PaidThrough": "Card",
        "SystemReference": system_reference, "NetworkReference": "224601434990", "MerchantReference": reference,
        "Amount": amount, "Currency": currency, "PayerAccount": "639499XXXXXX2740", "PayerName": "MS",
        "ActionCode": action,
    }
    body.update(extra)
    text = (f"Amount={body['Amount']}&Currency={body['Currency']}&DateTimeLocalTrxn={when}"
            f"&MerchantId={mid}&TerminalId={tid}")
    body["SecureHash"] = independent_hash(key, text)
    return body


def moamalat_row(owner=None, base_url=API, name="moamalat", mid=MID, tid=TID, **configuration):
    return ExternalIntegration.objects.create(
        kind=Kind.PAYMENT, code="moamalat", name=name, display_name="Moamalat", owner=owner, base_url=base_url,
        configuration={"retries": 0, "backoff": 0, **configuration},
        credentials={"merchant_id": mid, "terminal_id": tid, "secure_key": SECURE_KEY,
                     "notification_key": NOTIFICATION_KEY},
    )


def fake_payment(reference="ORDER-1", amount="10.000", currency="LYD", **extra):
    from decimal import Decimal

    values = dict(reference=reference, amount=Decimal(amount), currency=currency, method="card_credit",
                  bank_code="", payer_phone="", provider_reference="", provider_data={}, public_id=None)
    values.update(extra)
    return SimpleNamespace(**values)


def body_of(call):
    return json.loads(call.request.body)
