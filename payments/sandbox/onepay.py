"""A local 1Pay, mounted under /sandbox/payment/onepay/ when SANDBOX_ENABLED.

The wire format of payments/providers/onepay.py (docs/protocols/wallets.md) under api/v1/:
payments (create, find by orderId), payments/<id>, payments/<id>/confirm, payments/<id>/refunds,
health; and, sandbox only, _sms/ (GET ?phone=+2189…: the texts that number received). The wallet
itself is payments.sandbox.wallet. Faults from integrations.sandbox apply first:
`set_fault("payment", "onepay", ...)`.
"""

import json
import re

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from integrations.sandbox import simulated

from ..providers.onepay import from_dirhams, to_dirhams
from ..providers.wallet import e164
from .wallet import WalletBook, WalletError, inbox_view

CODE = "onepay"
book = WalletBook(CODE, "1Pay")
REFERENCE = re.compile(r"[A-Za-z0-9-]{1,30}")
STATUS = {"INVALID_OTP": 422, "NOT_REGISTERED": 422, "NOT_FOUND": 404, "ALREADY_PAID": 409,
          "REFERENCE_MISMATCH": 409, "NOT_PAID": 409, "REFUND_EXCEEDS": 422}


def _error(code, message, status=400):
    return JsonResponse({"error": {"code": code.lower(), "message": message}}, status=status)


def _payment(session):
    return {"id": session["id"], "orderId": session["reference"], "status": session["state"],
            "amount": to_dirhams(session["amount"]), "currency": "LYD", "msisdn": session["phone"],
            "transactionId": session["transaction_id"], "refundedAmount": to_dirhams(session["refunded"]),
            "message": session["message"], "expiresAt": int(session["expires"])}


def _merchant_id(request):
    """The merchant the bearer key belongs to, else None."""
    auth = request.headers.get("Authorization", "")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    merchant_id = request.headers.get("X-Merchant-Id", "")
    return merchant_id if key and book.merchant(merchant_id, api_key=key) else None


def _body(request):
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _refused(exc):
    return _error(exc.code, exc.message, STATUS.get(exc.code, 400))


@simulated("payment")
def payments(request, code):
    merchant_id = _merchant_id(request)
    if merchant_id is None:
        return _error("unauthorized", "Invalid API key", 401)
    if request.method == "GET":
        session = book.by_reference(merchant_id, request.GET.get("orderId", ""))
        return JsonResponse({"data": [_payment(session)] if session else []})
    if request.method != "POST":
        return _error("method_not_allowed", "GET or POST", 405)
    body = _body(request)
    if body is None:
        return _error("invalid_request", "The body must be a JSON object")
    reference, phone = str(body.get("orderId") or ""), e164(body.get("msisdn"))
    amount = from_dirhams(body.get("amount")) if isinstance(body.get("amount"), int) else None
    if request.headers.get("Idempotency-Key") != reference:
        return _error("invalid_idempotency_key", "Idempotency-Key must be the orderId")
    if not REFERENCE.fullmatch(reference):
        return _error("invalid_order_id", "orderId must be 1 to 30 letters, digits or dashes")
    if phone is None or not str(body.get("msisdn")).startswith("+"):
        return _error("invalid_msisdn", "msisdn must be +2189XXXXXXXX")
    if not amount or body.get("currency") != "LYD":
        return _error("invalid_amount", "amount must be a positive integer of dirhams, currency LYD")
    seen = book.by_reference(merchant_id, reference)
    try:
        session = book.initiate(merchant_id, reference, phone, amount, prefix="op_")
    except WalletError as exc:
        return _refused(exc)
    return JsonResponse(_payment(session), status=200 if seen and seen["id"] == session["id"] else 201)


@simulated("payment")
@require_GET
def payment(request, code, payment_id):
    merchant_id = _merchant_id(request)
    if merchant_id is None:
        return _error("unauthorized", "Invalid API key", 401)
    session = book.session(merchant_id, payment_id)
    if session is None:
        return _error("not_found", "No such payment", 404)
    return JsonResponse(_payment(session))


@simulated("payment")
@require_POST
def confirm(request, code, payment_id):
    merchant_id = _merchant_id(request)
    if merchant_id is None:
        return _error("unauthorized", "Invalid API key", 401)
    body = _body(request)
    if body is None:
        return _error("invalid_request", "The body must be a JSON object")
    try:
        session = book.confirm(merchant_id, payment_id, body.get("otp"), reference=str(body.get("orderId") or ""))
    except WalletError as exc:
        return _refused(exc)
    return JsonResponse(_payment(session))


@simulated("payment")
@require_POST
def refunds(request, code, payment_id):
    merchant_id = _merchant_id(request)
    if merchant_id is None:
        return _error("unauthorized", "Invalid API key", 401)
    body = _body(request)
    if body is None:
        return _error("invalid_request", "The body must be a JSON object")
    amount = from_dirhams(body.get("amount")) if isinstance(body.get("amount"), int) else None
    reference = str(body.get("reference") or "")
    if not amount or not reference or request.headers.get("Idempotency-Key") != reference:
        return _error("invalid_refund", "A positive amount of dirhams and a reference (the Idempotency-Key)")
    session = book.session(merchant_id, payment_id)
    if session is None or not session["transaction_id"]:
        return _error("not_found", "No paid payment with this id", 404)
    try:
        _session, done = book.refund(merchant_id, session["transaction_id"], amount, reference)
    except WalletError as exc:
        return _refused(exc)
    return JsonResponse({"id": done["id"], "status": "succeeded", "amount": to_dirhams(done["amount"]),
                         "reference": reference, "message": "Refunded"}, status=201)


@simulated("payment")
def health(request, code):
    return JsonResponse({"status": "up"})


urlpatterns = [
    path("api/v1/payments", payments, {"code": CODE}, name="sandbox-onepay-payments"),
    path("api/v1/payments/<str:payment_id>", payment, {"code": CODE}, name="sandbox-onepay-payment"),
    path("api/v1/payments/<str:payment_id>/confirm", confirm, {"code": CODE}, name="sandbox-onepay-confirm"),
    path("api/v1/payments/<str:payment_id>/refunds", refunds, {"code": CODE}, name="sandbox-onepay-refunds"),
    path("api/v1/health", health, {"code": CODE}, name="sandbox-onepay-health"),
    path("_sms/", inbox_view(book), name="sandbox-onepay-sms"),
]
