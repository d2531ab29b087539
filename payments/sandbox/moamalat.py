"""A local Moamalat gateway, mounted under /sandbox/moamalat/ when SANDBOX_ENABLED.

What the real gateway does, over the same paths, fields and answer shapes (docs/protocols/moamalat.md):
  js/lightbox.js                              the Lightbox script: `Lightbox.Checkout.configure`,
                                              `showLightbox()`, the three callbacks
  lightbox/                                   the card window the script opens (Approve / Decline / Cancel)
  lightbox/pay/                               what that window posts: checks the SecureHash, records
                                              the sale, answers the callback's data, then sends the
                                              signed notification to the terminal's webhook
  cube/paylink.svc/api/FilterTransactions     the transactions of a MerchantReference / NetworkReference
  cube/paylink.svc/api/RefundTransaction      full and partial refunds, never beyond what is left
  _notifications/                             (POST JSON) how notifications misbehave: drop, duplicate,
                                              delay_ms, times

Terminals are the project's own Moamalat rows: the gateway knows a terminal by its MID and TID, and
uses that row's keys and webhook URL as a merchant would have set them in Moamalat's portal
(/webhooks/payment/moamalat/ for the platform's row, /webhooks/payment/moamalat/<row id>/ for a
merchant's). Transactions live in the shared cache, so every web worker and the tests see the same
gateway. Faults from integrations.sandbox apply first (`set_fault("payment", "moamalat", ...)`).
"""

import json
import logging
import threading
import time

import requests
from django.core.cache import cache
from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.models import ExternalIntegration
from integrations.sandbox import faulty_response

from ..moamalat_hash import API_FIELDS, NOTIFICATION_FIELDS, BadKey, hash_matches, secure_hash
from ..providers.moamalat import TIMEZONE, mask_account

logger = logging.getLogger(__name__)

PREFIX = "sandbox:moamalat:"
TTL = 7 * 86400
CODE = "moamalat"
CURRENCY = {"LYD": "434", "USD": "840"}
TEST_CARD = "4111111111111111"
NOTIFY_RETRIES = 3


def _tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


# --- terminals ------------------------------------------------------------------------------------
def terminal(mid, tid):
    """The row whose MID and TID these are (the platform's first), or None."""
    mid, tid = str(mid or "").strip(), str(tid or "").strip()
    if not mid or not tid:
        return None
    rows = ExternalIntegration.objects.filter(code=CODE).order_by(F("owner").asc(nulls_first=True), "priority",
                                                                  "created_at")
    for row in rows:
        creds = row.credentials or {}
        if str(creds.get("merchant_id", "")).strip() == mid and str(creds.get("terminal_id", "")).strip() == tid:
            return row
    return None


def webhook_path(row):
    if row.owner_id is None:
        return reverse("webhook", kwargs={"kind": "payment", "code": CODE})
    return reverse("webhook-for", kwargs={"kind": "payment", "code": CODE, "integration_id": row.pk})


def _signed(row, key_name, fields, received):
    try:
        return hash_matches((row.credentials or {}).get(key_name), fields, received)
    except BadKey:
        return False


# --- transactions, in the shared cache ------------------------------------------------------------
_stores = {}


def _store():
    """Where transactions live: the shared cache, except that Django's file cache forgets all but ~300
    entries (MAX_ENTRIES) and a gateway must not forget a sale; there, a file cache of its own beside
    it that never culls."""
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.filebased import FileBasedCache

    backend = caches["default"]
    if not isinstance(backend, FileBasedCache):
        return cache
    location = str(settings.CACHES["default"]["LOCATION"]).rstrip("/") + "-sandbox-moamalat"
    if location not in _stores:
        _stores[location] = type(backend)(location, {"OPTIONS": {"MAX_ENTRIES": 10**9}})
    return _stores[location]


def _txn_key(mid, tid, sysref):
    return f"{PREFIX}txn:{mid}:{tid}:{sysref}"


def _ref_key(mid, tid, kind, value):
    return f"{PREFIX}{kind}:{mid}:{tid}:{value}"


def _next_reference():
    store = _store()
    store.add(f"{PREFIX}seq", 1_233_300, TTL)
    return str(store.incr(f"{PREFIX}seq"))


class _Lock:
    """One terminal's writes at a time (a sale for a reference, a refund of a sale)."""

    def __init__(self, name):
        self.key = f"{PREFIX}lock:{name}"

    def __enter__(self):
        deadline = time.monotonic() + 10
        while not cache.add(self.key, 1, 30):
            if time.monotonic() > deadline:
                raise TimeoutError(self.key)
            time.sleep(0.01)

    def __exit__(self, *exc):
        cache.delete(self.key)


def _save(txn):
    mid, tid = txn["MerchantId"], txn["TerminalId"]
    store = _store()
    store.set(_txn_key(mid, tid, txn["TransactionId"]), txn, TTL)
    for kind, value in (("ref", txn["MerchantReference"]), ("rrn", txn["RRN"])):
        key = _ref_key(mid, tid, kind, value)
        ids = store.get(key) or []
        if txn["TransactionId"] not in ids:
            store.set(key, [*ids, txn["TransactionId"]], TTL)


def transactions(mid, tid, merchant_reference="", network_reference=""):
    ids = []
    store = _store()
    if merchant_reference:
        ids = store.get(_ref_key(mid, tid, "ref", merchant_reference)) or []
    if network_reference:
        by_rrn = store.get(_ref_key(mid, tid, "rrn", network_reference)) or []
        ids = [i for i in ids if i in by_rrn] if merchant_reference else by_rrn
    found = store.get_many([_txn_key(mid, tid, i) for i in ids])
    return [found[_txn_key(mid, tid, i)] for i in ids if _txn_key(mid, tid, i) in found]


def _local(when=None):
    return (when or timezone.now()).astimezone(_tz())


# --- notifications --------------------------------------------------------------------------------
def set_notification_fault(**spec):
    """drop: send nothing · duplicate: send each twice · delay_ms: wait first · times: the next N only."""
    cache.set(f"{PREFIX}notify-fault", spec, 3600)
    if "times" in spec:
        cache.set(f"{PREFIX}notify-fault:left", int(spec["times"]), 3600)


def _notification_fault():
    spec = cache.get(f"{PREFIX}notify-fault") or {}
    if spec and "times" in spec:
        try:
            if cache.decr(f"{PREFIX}notify-fault:left") < 0:
                return {}
        except ValueError:
            return {}
    return spec


def notification_for(row, txn, txn_type):
    """The body the gateway POSTs for `txn`, signed with the row's notification key."""
    creds = row.credentials or {}
    body = {
        "MerchantId": txn["MerchantId"], "TerminalId": txn["TerminalId"],
        "DateTimeLocalTrxn": _local().strftime("%Y%m%d%H%M%S"), "TxnType": txn_type,
        "Message": txn["Status"], "PaidThrough": "Card", "SystemReference": txn["TransactionId"],
        "NetworkReference": txn["RRN"], "MerchantReference": txn["MerchantReference"],
        "Amount": str(txn["AmountTrxn"]), "Currency": CURRENCY.get(txn["Currency"], txn["Currency"]),
        "PayerAccount": txn["CardNo"], "PayerName": "SANDBOX BUYER", "ActionCode": txn["ActionCode"],
    }
    body["SecureHash"] = secure_hash(creds.get("notification_key"), {n: body[n] for n in NOTIFICATION_FIELDS})
    return body


def send_notification(url, body):
    """POST in the background, as the gateway does after answering the Lightbox: retried a few
    times on a refusal or a network fault, then given up (reconciliation finds the rest)."""
    fault = _notification_fault()
    if fault.get("drop"):
        return None

    def deliver():
        if fault.get("delay_ms"):
            time.sleep(float(fault["delay_ms"]) / 1000)
        for _copy in range(2 if fault.get("duplicate") else 1):
            for attempt in range(NOTIFY_RETRIES):
                try:
                    answer = requests.post(url, json=body, timeout=10)
                    if answer.status_code == 200:
                        break
                except requests.RequestException as exc:
                    logger.info("Sandbox Moamalat: notification to %s failed: %s", url, exc)
                time.sleep(0.2 * 2 ** attempt)

    thread = threading.Thread(target=deliver, name="sandbox-moamalat-notify", daemon=True)
    thread.start()
    return thread


def _notify(request, row, txn, txn_type):
    url = request.build_absolute_uri(webhook_path(row))
    return send_notification(url, notification_for(row, txn, txn_type))


# --- the Lightbox ---------------------------------------------------------------------------------
def lightbox_js(request):
    script = LIGHTBOX_JS.replace("__PAGE__", request.build_absolute_uri(reverse("sandbox-moamalat-lightbox")))
    return HttpResponse(script, content_type="application/javascript")


def _checkout_fields(data):
    return {"Amount": str(data.get("AmountTrxn", "")), "DateTimeLocalTrxn": str(data.get("TrxDateTime", "")),
            "MerchantId": str(data.get("MID", "")), "MerchantReference": str(data.get("MerchantReference", "")),
            "TerminalId": str(data.get("TID", ""))}


def _check_checkout(data):
    """(row, error text) for the fields a merchant's page configured."""
    fields = _checkout_fields(data)
    row = terminal(fields["MerchantId"], fields["TerminalId"])
    if row is None:
        return None, "Unknown merchant or terminal"
    if not fields["Amount"].isdigit() or int(fields["Amount"]) <= 0:
        return row, "Invalid amount"
    if not _signed(row, "secure_key", fields, data.get("SecureHash")):
        return row, "Invalid Secure Hash"
    return row, ""


@xframe_options_exempt
def lightbox_page(request):
    _row, error = _check_checkout(request.GET)
    amount = request.GET.get("AmountTrxn", "")
    context = {"error": error, "fields": {k: request.GET.get(k, "") for k in
                                          ("MID", "TID", "AmountTrxn", "MerchantReference", "TrxDateTime",
                                           "SecureHash")},
               "amount": f"{int(amount) / 1000:.3f}" if amount.isdigit() else amount, "card": TEST_CARD,
               "pay_url": reverse("sandbox-moamalat-pay")}
    return render(request, "payments/sandbox/moamalat_lightbox.html", context)


@csrf_exempt
@require_POST
def lightbox_pay(request):
    fault = faulty_response("payment", CODE)
    if fault:
        return fault
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "Invalid request"}, status=400)
    if not isinstance(data, dict):
        return JsonResponse({"error": "Invalid request"}, status=400)
    row, error = _check_checkout(data)
    if error:
        return JsonResponse({"error": error}, status=400)
    mid, tid = str(data["MID"]), str(data["TID"])
    approve = data.get("outcome", "approve") == "approve"
    with _Lock(f"{mid}:{tid}:{data['MerchantReference']}"):
        paid = [t for t in transactions(mid, tid, data["MerchantReference"])
                if t["TransType"] == "Sale" and t["Status"] == "Approved"]
        if paid:
            return JsonResponse({"error": "This reference is already paid"}, status=409)
        sysref = _next_reference()
        txn = {
            "TransactionId": sysref, "RRN": f"2246{sysref:0>8}", "STAN": sysref[-6:], "TransType": "Sale",
            "Status": "Approved" if approve else "Declined", "ActionCode": "00" if approve else "51",
            "AmountTrxn": int(data["AmountTrxn"]), "Currency": str(row.configuration.get("currency") or "LYD"),
            "CardNo": mask_account(str(data.get("CardNo") or TEST_CARD).replace(" ", "")),
            "MerchantReference": str(data["MerchantReference"]), "MerchantId": mid, "TerminalId": tid,
            "TxnDateTime": _local().isoformat(), "Refunded": 0, "OriginalTxnId": "",
        }
        _save(txn)
    _notify(request, row, txn, 1)
    callback = notification_for(row, txn, 1)
    callback["TxnDate"] = callback.pop("DateTimeLocalTrxn")
    return JsonResponse(callback if approve else {**callback, "error": "Declined"}, status=200 if approve else 402)


# --- the server API -------------------------------------------------------------------------------
def _api_request(request):
    """(row, body, refusal response)."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, None, JsonResponse({"Message": "Invalid request", "Success": False}, status=400)
    row = terminal(body.get("MerchantId"), body.get("TerminalId"))
    fields = {n: str(body.get(n, "")) for n in API_FIELDS}
    if row is None or not _signed(row, "secure_key", fields, body.get("SecureHash")):
        return None, None, JsonResponse({"Message": "Invalid Secure Hash", "Success": False})
    return row, body, None


def _listed(txn):
    remaining = txn["AmountTrxn"] - txn["Refunded"] if txn["TransType"] == "Sale" else 0
    when = timezone.datetime.fromisoformat(txn["TxnDateTime"])
    return {
        "TransactionId": txn["TransactionId"], "RRN": txn["RRN"], "STAN": txn["STAN"],
        "AmountTrxn": str(txn["AmountTrxn"]), "Currency": txn["Currency"], "CardNo": txn["CardNo"],
        "MerchantReference": txn["MerchantReference"], "Status": txn["Status"], "TransType": txn["TransType"],
        "TxnDateTime": when.strftime("%d/%m/%y %H:%M"), "IsRefunded": txn["Refunded"] > 0,
        "RemainingRefundAmount": str(remaining), "OriginalTxnId": txn["OriginalTxnId"],
    }


@csrf_exempt
@require_POST
def filter_transactions(request):
    fault = faulty_response("payment", CODE)
    if fault:
        return fault
    _row, body, refusal = _api_request(request)
    if refusal:
        return refusal
    found = transactions(str(body["MerchantId"]), str(body["TerminalId"]), str(body.get("MerchantReference") or ""),
                         str(body.get("NetworkReference") or ""))
    try:
        start, length = int(body.get("DisplayStart") or 0), int(body.get("DisplayLength") or 10)
    except (TypeError, ValueError):
        return JsonResponse({"Message": "Invalid paging", "Success": False})
    page = found[start:start + max(length, 0)]
    days = {}
    for txn in page:
        day = timezone.datetime.fromisoformat(txn["TxnDateTime"]).strftime("%d/%m/%Y")
        days.setdefault(day, []).append(_listed(txn))
    return JsonResponse({
        "Message": None, "Success": True, "TotalCountAllTransaction": len(found),
        "TotalAmountAllTransaction": str(sum(t["AmountTrxn"] for t in found)),
        "Transactions": [{"Date": day, "DateTotalAmount": str(sum(int(t["AmountTrxn"]) for t in rows)),
                          "DateTransactions": rows} for day, rows in days.items()],
    })


@csrf_exempt
@require_POST
def refund_transaction(request):
    fault = faulty_response("payment", CODE)
    if fault:
        return fault
    row, body, refusal = _api_request(request)
    if refusal:
        return refusal
    mid, tid = str(body["MerchantId"]), str(body["TerminalId"])
    amount = body.get("AmountTrxn")
    if isinstance(amount, bool) or not str(amount).isdigit() or int(amount) <= 0:
        return JsonResponse({"Message": "Invalid refund amount", "Success": False})
    sysref = str(body.get("SystemReference") or "")
    if not sysref and body.get("NetworkReference"):
        sales = [t for t in transactions(mid, tid, network_reference=str(body["NetworkReference"]))
                 if t["TransType"] == "Sale"]
        sysref = sales[0]["TransactionId"] if sales else ""
    with _Lock(f"{mid}:{tid}:refund:{sysref}"):
        sale = _store().get(_txn_key(mid, tid, sysref)) if sysref else None
        if not sale or sale["TransType"] != "Sale" or sale["Status"] != "Approved":
            return JsonResponse({"Message": "Transaction not found", "Success": False})
        if int(amount) > sale["AmountTrxn"] - sale["Refunded"]:
            return JsonResponse({"Message": "Refund amount exceeds the remaining amount", "Success": False})
        sale["Refunded"] += int(amount)
        _save(sale)
        ref_number = _next_reference()
        refund = {**sale, "TransactionId": ref_number, "RRN": f"2246{ref_number:0>8}", "STAN": ref_number[-6:],
                  "TransType": "Refund", "AmountTrxn": int(amount), "Refunded": 0, "OriginalTxnId": sysref,
                  "TxnDateTime": _local().isoformat()}
        _save(refund)
    _notify(request, row, refund, 2)
    return JsonResponse({"Message": "Approved", "Success": True, "RefNumber": ref_number})


@csrf_exempt
def notifications_control(request):
    if request.method == "POST":
        try:
            spec = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "body must be a JSON object"}, status=400)
        if not isinstance(spec, dict):
            return JsonResponse({"error": "body must be a JSON object"}, status=400)
        set_notification_fault(**spec)
    elif request.method == "DELETE":
        cache.delete(f"{PREFIX}notify-fault")
    return JsonResponse(cache.get(f"{PREFIX}notify-fault") or {})


LIGHTBOX_JS = """/* Sandbox Moamalat Lightbox: the real script's interface, served by the simulator. */
(function () {
  var page = "__PAGE__";
  var origin = new URL(page).origin;
  var overlay = null;
  function close() { if (overlay) { overlay.remove(); overlay = null; } }
  function call(name, data) {
    var fn = window.Lightbox.Checkout.configure[name];
    if (typeof fn === "function") { try { fn(data); } catch (e) { console.error(e); } }
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !event.data || event.data.source !== "moamalat-lightbox") { return; }
    close();
    if (event.data.event === "complete") { call("completeCallback", event.data.data); }
    else if (event.data.event === "cancel") { call("cancelCallback"); }
    else { call("errorCallback", event.data.data); }
  });
  window.Lightbox = {Checkout: {configure: {}, showLightbox: function () {
    var c = window.Lightbox.Checkout.configure, q = new URLSearchParams();
    ["MID", "TID", "AmountTrxn", "MerchantReference", "TrxDateTime", "SecureHash"].forEach(function (k) {
      q.set(k, c[k] === undefined ? "" : String(c[k]));
    });
    close();
    overlay = document.createElement("div");
    overlay.id = "moamalat-lightbox";
    overlay.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.55);z-index:99999;" +
      "display:flex;align-items:center;justify-content:center";
    var frame = document.createElement("iframe");
    frame.title = "Moamalat";
    frame.src = page + "?" + q.toString();
    frame.style.cssText = "width:420px;max-width:96vw;height:520px;border:0;border-radius:8px;background:#fff";
    overlay.appendChild(frame);
    document.body.appendChild(overlay);
  }}};
})();
"""

urlpatterns = [
    path("js/lightbox.js", lightbox_js, name="sandbox-moamalat-js"),
    path("lightbox/", lightbox_page, name="sandbox-moamalat-lightbox"),
    path("lightbox/pay/", lightbox_pay, name="sandbox-moamalat-pay"),
    path("cube/paylink.svc/api/FilterTransactions", filter_transactions, name="sandbox-moamalat-filter"),
    path("cube/paylink.svc/api/RefundTransaction", refund_transaction, name="sandbox-moamalat-refund"),
    path("_notifications/", notifications_control, name="sandbox-moamalat-notifications"),
]
