"""What the wallet tests (MobiCash, Sadad, 1Pay) share: provider rows pointing at a mocked wallet or
at its simulator, a payment as the adapters read it, and the simulator's SMS inbox."""

import json
from decimal import Decimal
from types import SimpleNamespace

import requests

from integrations.models import ExternalIntegration, IntegrationLog, Kind

MERCHANT_ID = "EISHRO-0042"
API_KEY = "wk_Secret-5f9c2e7781aa"  # MobiCash's and 1Pay's key
USERNAME = "eishro-api"
PASSWORD = "pw-Sadad-Secret-4410"
PHONE = "+218912345678"
SANDBOX_PATHS = {"mobicash": "payment/mobicash/api/v1/", "onepay": "payment/onepay/api/v1/",
                 "sadad": "payment/sadad/MerchantService.svc"}
SECRETS = {"mobicash": API_KEY, "onepay": API_KEY, "sadad": PASSWORD}


def credentials(code, **override):
    creds = ({"merchant_id": MERCHANT_ID, "username": USERNAME, "password": PASSWORD} if code == "sadad"
             else {"merchant_id": MERCHANT_ID, "api_key": API_KEY})
    return {**creds, **override}


def wallet_row(code, base_url, *, enabled=True, name=None, owner=None, creds=None, **configuration):
    config = {"retries": 0, "backoff": 0, **configuration}
    if enabled is not None:
        config["enabled"] = enabled
    return ExternalIntegration.objects.create(
        kind=Kind.PAYMENT, code=code, name=name or code, display_name=code.title(), owner=owner, base_url=base_url,
        configuration=config, credentials=creds or credentials(code))


def sandbox_row(live_server, code, **kwargs):
    return wallet_row(code, f"{live_server.url}/sandbox/{SANDBOX_PATHS[code]}", **kwargs)


def payment(reference="ORDER-1", amount="12.500", currency="LYD", phone=PHONE, provider_reference="", **extra):
    values = dict(reference=reference, amount=Decimal(amount), currency=currency, method="", bank_code="",
                  payer_phone=phone, provider_reference=provider_reference, provider_data={}, created_at=None,
                  expires_at=None)
    values.update(extra)
    return SimpleNamespace(**values)


def refund(reference="REFUND-1", amount="5.000"):
    return SimpleNamespace(reference=reference, amount=Decimal(amount))


def sms_codes(live_server, code, phone=PHONE):
    """The one-time codes the simulator texted `phone`, newest first (its sandbox-only inbox)."""
    answer = requests.get(f"{live_server.url}/sandbox/payment/{code}/_sms/", params={"phone": phone}, timeout=5)
    answer.raise_for_status()
    return [m["code"] for m in answer.json()["messages"]]


def logged(row):
    """Everything stored of the row's calls, as one text."""
    rows = IntegrationLog.objects.filter(integration=row)
    return json.dumps([[r.endpoint, r.request_headers, r.request_body, r.response_body, r.error_message]
                       for r in rows], default=str)


def wrong(code):
    """A six-digit code other than `code`."""
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def model_payment(owner, row, method, **fields):
    """A `payments.models.Payment` row for `row`, as the services hand it to an adapter."""
    from payments.models import Payment

    values = {"amount": Decimal("12.500"), "currency": "LYD", "payer_phone": PHONE, **fields}
    return Payment.objects.create(owner=owner, integration=row, method=method, **values)


def begin_and_keep(adapter, payment_row):
    """`begin`, then keep what it returned on the row as the services do."""
    checkout = adapter.begin(payment_row)
    payment_row.provider_reference, payment_row.provider_data = checkout.provider_reference, dict(checkout.data)
    payment_row.save(update_fields=["provider_reference", "provider_data"])
    return checkout
