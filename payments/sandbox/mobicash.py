"""A local MobiCash, mounted under /sandbox/payment/mobicash/ when SANDBOX_ENABLED.

The wire format of payments/providers/mobicash.py (docs/protocols/wallets.md) under api/v1/:
transaction/verify, transaction/confirm, transaction/status, health; and, sandbox only, _sms/
(GET ?phone=+2189…: the texts, one-time codes included, that number received). The wallet itself
(sessions, codes, the sandbox's numbers) is payments.sandbox.wallet. Faults from
integrations.sandbox apply first: `set_fault("payment", "mobicash", ...)`.
"""

import json
import re

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from integrations.sandbox import simulated

from ..providers.wallet import decimal_amount, e164
from .wallet import WalletBook, WalletError, inbox_view

CODE = "mobicash"
book = WalletBook(CODE, "MobiCash")
REFERENCE = re.compile(r"[A-Za-z0-9-]{1,30}")
STATUS = {"INVALID_OTP": 400, "NOT_REGISTERED": 400, "NOT_FOUND": 404, "ALREADY_PAID": 409,
          "REFERENCE_MISMATCH": 409}


def _error(code, message, status=400):
    return JsonResponse({"status": "error", "error": {"code": code, "message": message}}, status=status)


def _result(session, **extra):
    result = {"process_id": session["id"], "invoice_no": session["reference"], "state": session["state"],
              "amount": session["amount"], "currency": "LYD", "transaction_id": session["transaction_id"],
              "refunded_amount": session["refunded"], "message": session["message"], **extra}
    return JsonResponse({"status": "success", "result": result})


def _merchant(request, merchant_id):
    return book.merchant(merchant_id, api_key=request.headers.get("X-API-KEY", ""))


def _body(request):
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


@simulated("payment")
@require_POST
def verify(request, code):
    body = _body(request)
    if body is None:
        return _error("INVALID_REQUEST", "The body must be a JSON object")
    if _merchant(request, body.get("merchant_id")) is None:
        return _error("INVALID_API_KEY", "Invalid merchant or API key", 401)
    phone = e164(body.get("mobile_number")) if str(body.get("mobile_number", "")).startswith("+") else None
    amount = decimal_amount(body.get("amount")) if isinstance(body.get("amount"), str) else None
    reference = str(body.get("invoice_no") or "")
    if phone is None:
        return _error("INVALID_MOBILE", "mobile_number must be +2189XXXXXXXX")
    if amount is None or amount <= 0:
        return _error("INVALID_AMOUNT", "amount must be a positive decimal string with up to 3 places")
    if body.get("currency") != "LYD":
        return _error("INVALID_CURRENCY", "MobiCash accepts LYD only")
    if not REFERENCE.fullmatch(reference):
        return _error("INVALID_INVOICE", "invoice_no must be 1 to 30 letters, digits or dashes")
    try:
        session = book.initiate(str(body["merchant_id"]), reference, phone, amount, prefix="MC")
    except WalletError as exc:
        return _error(exc.code, exc.message, STATUS.get(exc.code, 400))
    return _result(session, expires_in=max(0, int(session["expires"] - session["created"])), message="OTP sent")


@simulated("payment")
@require_POST
def confirm(request, code):
    body = _body(request)
    if body is None:
        return _error("INVALID_REQUEST", "The body must be a JSON object")
    if _merchant(request, body.get("merchant_id")) is None:
        return _error("INVALID_API_KEY", "Invalid merchant or API key", 401)
    try:
        session = book.confirm(str(body["merchant_id"]), str(body.get("process_id") or ""), body.get("otp"),
                               reference=str(body.get("invoice_no") or ""))
    except WalletError as exc:
        return _error(exc.code, exc.message, STATUS.get(exc.code, 400))
    return _result(session)


@simulated("payment")
@require_GET
def status(request, code):
    merchant_id = request.GET.get("merchant_id", "")
    if _merchant(request, merchant_id) is None:
        return _error("INVALID_API_KEY", "Invalid merchant or API key", 401)
    session = book.by_reference(merchant_id, request.GET.get("invoice_no", ""))
    if session is None:
        return _error("NOT_FOUND", "No payment for this invoice_no", 404)
    return _result(session)


@simulated("payment")
def health(request, code):
    return JsonResponse({"status": "success", "result": {"service": "mobicash", "state": "up"}})


urlpatterns = [
    path("api/v1/transaction/verify", verify, {"code": CODE}, name="sandbox-mobicash-verify"),
    path("api/v1/transaction/confirm", confirm, {"code": CODE}, name="sandbox-mobicash-confirm"),
    path("api/v1/transaction/status", status, {"code": CODE}, name="sandbox-mobicash-status"),
    path("api/v1/health", health, {"code": CODE}, name="sandbox-mobicash-health"),
    path("_sms/", inbox_view(book), name="sandbox-mobicash-sms"),
]
