"""A local Sadad, a SOAP 1.1 service mounted under /sandbox/payment/sadad/ when SANDBOX_ENABLED.

MerchantService.svc implements payments/wsdl/sadad.wsdl (GET ?wsdl serves it, with this server's
address): the envelope is parsed with lxml (no DTD, no entities, no network), the operation is the
Body's element, answers are SOAP 1.1 envelopes and refusals SOAP Faults (HTTP 500) with a
SadadFault detail, as the WSDL declares. _sms/ (sandbox only, GET ?phone=+2189…) lists the texts a
number received. The wallet itself is payments.sandbox.wallet.

Faults from integrations.sandbox apply first (`set_fault("payment", "sadad", ...)`), as a SOAP
service fails: `malformed` is a truncated envelope, `html` a proxy's page, `status` that status.
"""

import time
from xml.sax.saxutils import escape

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from lxml import etree

from integrations.sandbox import active_fault, fault_answer

from ..providers.sadad import NOT_FOUND, WSDL
from ..providers.wallet import decimal_amount, e164
from .wallet import WalletBook, WalletError, inbox_view

CODE = "sadad"
NS = "urn:sadad:merchant:payments:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XML = "text/xml; charset=utf-8"
book = WalletBook(CODE, "Sadad")
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
MAX_BODY = 64 * 1024


class Fault(Exception):
    def __init__(self, code, message, faultcode="soap:Client"):
        super().__init__(message)
        self.code, self.message, self.faultcode = code, message, faultcode


def envelope(body):
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}'
            "</soap:Body></soap:Envelope>")


def fault_envelope(fault):
    return envelope(
        f"<soap:Fault><faultcode>{fault.faultcode}</faultcode><faultstring>{escape(fault.message)}</faultstring>"
        f'<detail><SadadFault xmlns="{NS}"><Code>{escape(fault.code)}</Code><Message>{escape(fault.message)}'
        "</Message></SadadFault></detail></soap:Fault>")


def element(name, fields):
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items() if v not in (None, ""))
    return f'<{name} xmlns="{NS}">{inner}</{name}>'


def _read(request):
    """(operation, {field: text}) of a SOAP request; Fault when it is not one."""
    if len(request.body) > MAX_BODY:
        raise Fault("INVALID_REQUEST", "Request too large")
    try:
        root = etree.fromstring(request.body, PARSER)
    except etree.XMLSyntaxError:
        raise Fault("INVALID_REQUEST", "The request is not XML") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise Fault("INVALID_REQUEST", "Not a SOAP 1.1 envelope", "soap:VersionMismatch")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    operation = next(iter(body), None) if body is not None else None
    if operation is None or not isinstance(operation.tag, str) or etree.QName(operation).namespace != NS:
        raise Fault("INVALID_REQUEST", "No Sadad operation in the Body")
    fields = {etree.QName(child).localname: (child.text or "").strip()
              for child in operation if isinstance(child.tag, str)}
    return etree.QName(operation).localname, fields


def _merchant(fields):
    row = book.merchant(fields.get("MerchantId"), username=fields.get("Username"), password=fields.get("Password"))
    if row is None:
        raise Fault("AUTHENTICATION_FAILED", "Authentication failed: invalid merchant, username or password")
    return fields["MerchantId"]


def _result(session):
    return {"MerchantReference": session["reference"], "Status": session["state"], "SessionId": session["id"],
            "TransactionId": session["transaction_id"], "Amount": session["amount"],
            "RefundedAmount": session["refunded"], "Currency": "LYD", "Message": session["message"]}


def initiate_payment(fields):
    merchant_id = _merchant(fields)
    phone, amount = e164(fields.get("MobileNumber")), decimal_amount(fields.get("Amount"))
    year = fields.get("BirthYear", "")
    if phone is None or not fields["MobileNumber"].startswith("+"):
        raise Fault("INVALID_MOBILE", "MobileNumber must be +2189XXXXXXXX")
    if not (year.isdigit() and 1900 <= int(year) <= time.gmtime().tm_year):
        raise Fault("INVALID_BIRTH_YEAR", "BirthYear must be a year")
    if amount is None or amount <= 0 or fields.get("Currency") != "LYD":
        raise Fault("INVALID_AMOUNT", "Amount must be a positive LYD amount with up to 3 decimals")
    session = book.initiate(merchant_id, fields.get("MerchantReference", ""), phone, amount, prefix="SD",
                            birth_year=year)
    return {"SessionId": session["id"], "Status": session["state"],
            "ExpiresInSeconds": max(0, int(session["expires"] - session["created"])), "Message": "OTP sent"}


def confirm_payment(fields):
    merchant_id = _merchant(fields)
    session = book.confirm(merchant_id, fields.get("SessionId", ""), fields.get("OTP"),
                           reference=fields.get("MerchantReference", ""))
    return _result(session)


def get_payment_status(fields):
    merchant_id = _merchant(fields)
    reference = fields.get("MerchantReference", "")
    session = book.by_reference(merchant_id, reference)
    if session is None:
        return {"MerchantReference": reference, "Status": NOT_FOUND, "Message": "No payment with this reference"}
    return _result(session)


def refund_payment(fields):
    merchant_id = _merchant(fields)
    amount = decimal_amount(fields.get("Amount"))
    if amount is None or amount <= 0 or not fields.get("RefundReference"):
        raise Fault("INVALID_REFUND", "A positive Amount and a RefundReference are required")
    session = book.by_reference(merchant_id, fields.get("MerchantReference", ""))
    if session is None or not session["transaction_id"]:
        raise Fault("NOT_FOUND", "No paid payment with this reference")
    _session, done = book.refund(merchant_id, session["transaction_id"], amount, fields["RefundReference"])
    return {"RefundId": done["id"], "Status": "refunded", "Amount": done["amount"], "Message": "Refunded"}


OPERATIONS = {"InitiatePayment": initiate_payment, "ConfirmPayment": confirm_payment,
              "GetPaymentStatus": get_payment_status, "RefundPayment": refund_payment}


def _answer(request):
    try:
        operation, fields = _read(request)
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise Fault("UNKNOWN_OPERATION", f"Unknown operation {operation}")
        try:
            return HttpResponse(envelope(element(f"{operation}Response", handler(fields))), content_type=XML)
        except WalletError as exc:
            raise Fault(exc.code, exc.message) from None
    except Fault as fault:
        return HttpResponse(fault_envelope(fault), status=500, content_type=XML)


def _soap_fault_answer(spec):
    """What an injected fault does to a SOAP answer: a truncated envelope for `malformed`."""
    if spec.get("malformed") and not spec.get("status"):
        if spec.get("latency_ms"):
            time.sleep(spec["latency_ms"] / 1000)
        return HttpResponse(envelope("<GetPaymentStatusResponse")[:120], content_type=XML)
    return fault_answer(spec)


@csrf_exempt
def service(request):
    if request.method == "GET":
        if "wsdl" not in {k.lower() for k in request.GET}:
            return HttpResponse("GET ?wsdl for the service description", content_type="text/plain")
        address = request.build_absolute_uri(request.path)
        text = WSDL.read_text().replace("https://sadad.invalid/MerchantService.svc", escape(address))
        return HttpResponse(text, content_type=XML)
    if request.method != "POST":
        return HttpResponse(status=405)
    spec = active_fault("payment", CODE)
    if spec is None:
        return _answer(request)
    if spec.get("after"):
        answer = _answer(request)
        return _soap_fault_answer(spec) or answer
    return _soap_fault_answer(spec) or _answer(request)


urlpatterns = [
    path("MerchantService.svc", service, name="sandbox-sadad-service"),
    path("_sms/", inbox_view(book), name="sandbox-sadad-sms"),
]
