"""The "panel API v2" adapter: one class for Just Another Panel, SMM Kings, Secsers and their clones.

One URL, form-encoded POST with `key` and `action`. Panels are sloppy: numbers arrive as strings or
numbers, errors come as `{"error": ...}` with HTTP 200, a bad key can yield an HTML page and fields
go missing. Everything here is translation (wire format <-> plain values); the HTTP is done by the
foundation's ProviderClient. Money is Decimal throughout: JSON is parsed with `parse_float=Decimal`.
"""

import json
import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from django.utils.translation import gettext_lazy as _

from integrations.adapters import CredentialField, ProviderMeta
from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.http import raise_for_response

from .interface import SmmPanel

BATCH = 100  # ids per multi-status / multi-refill / cancel call
NO_API_KEY = _("No API key yet: set the panel's API key to activate it.")

# Panel status text -> our SMMOrder.Status value.
STATUS_MAP = {
    "pending": "pending",
    "in progress": "in_progress",
    "inprogress": "in_progress",
    "processing": "processing",
    "completed": "completed",
    "partial": "partial",
    "canceled": "canceled",
    "cancelled": "canceled",
    "refunded": "canceled",
}
REFILL_STATUS_MAP = {
    "pending": "pending",
    "in progress": "in_progress",
    "processing": "in_progress",
    "completed": "completed",
    "rejected": "rejected",
    "canceled": "rejected",
    "cancelled": "rejected",
    "error": "failed",
}

# Which fields each service type sends besides `service` and `link` (the protocol's table).
TYPE_FIELDS = {
    "default": ("quantity", "runs", "interval"),
    "package": (),
    "custom comments": ("comments",),
    "custom comments package": ("comments",),
    "custom replies": ("comments",),
    "mentions with hashtags": ("quantity", "usernames", "hashtags"),
    "mentions custom list": ("usernames",),
    "mentions hashtag": ("quantity", "hashtag"),
    "mentions user followers": ("quantity", "username"),
    "mentions media likers": ("quantity", "media"),
    "comment likes": ("quantity", "username"),
    "seo": ("keywords",),
    "poll": ("quantity", "answer_number"),
    "subscriptions": ("username", "min", "max", "posts", "old_posts", "delay", "expiry"),
}
NO_LINK_TYPES = {"subscriptions"}


def to_decimal(value):
    if value is None or value == "" or isinstance(value, bool):
        return None
    if type(value) is Decimal:  # parse_float=Decimal
        return value
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None


def to_int(value):
    # Fast paths for the two shapes nearly every answer has (a poll parses two per order).
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    number = to_decimal(value)
    return int(number) if number is not None and number.is_finite() else None


def to_bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def to_id(value):
    if type(value) is str:
        return value.strip()
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    return str(value).strip()


class PanelService(NamedTuple):
    """One service of the catalogue. A tuple in `smm.catalogue.SERVICE_COLUMNS` order: a sync of
    thousands hands each row to the database as it is, without building another."""

    service_id: str
    name: str
    type: str
    category: str
    rate: Decimal
    min_quantity: int
    max_quantity: int
    refill: bool
    cancel: bool
    dripfeed: bool
    description: str


class PanelOrderStatus(NamedTuple):
    """One order's answer. A tuple: a poll reads a hundred thousand of them."""

    status: str | None  # our status value, None when the panel sent an error for this id
    raw_status: str = ""
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str = ""
    error: str = ""


_new_status = PanelOrderStatus._make


def error_for(message, *, payload=None, status_code=None):
    """The foundation's exception for a panel's `{"error": ...}` text, the text kept."""
    text = str(message).strip() or "Unknown error"
    low = text.lower()
    kwargs = {"provider_message": text, "payload": payload, "status_code": status_code}
    if ("key" in low and any(w in low for w in ("invalid", "incorrect", "wrong", "bad"))) or "unauthori" in low:
        return ProviderAuthError(text, **kwargs)
    if "too many" in low or "rate limit" in low:
        return ProviderRateLimited(text, **kwargs)
    if "maintenance" in low or "try again later" in low or "temporarily" in low:
        return ProviderUnavailable(text, **kwargs)
    return ProviderValidationError(text, **kwargs)


def _looks_like_html(text, content_type):
    head = text.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<head", "<body"))


def _html_title(text):
    match = re.search(r"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", text, re.I | re.S)
    return " ".join((match.group(1) or match.group(2)).split())[:120] if match else ""


class PanelV2(SmmPanel):
    meta = ProviderMeta(
        label="SMM panel (API v2)",
        kind="smm",
        credentials=(CredentialField("api_key", label=_("API key")),),
        timeout=30.0,
    )

    # --- transport ---------------------------------------------------------------------------
    def call(self, action, *, idempotent, **fields):
        key = self.credentials.get("api_key", "")
        if not key:
            # A default panel waiting for its key (smm.providers.create_default_panels): nothing to ask.
            raise ProviderAuthError(str(NO_API_KEY), sent=False)
        data = {"key": key, "action": action}
        data.update({k: v for k, v in fields.items() if v is not None and v != ""})
        response = self.client.request("POST", "", operation=action, data=data, idempotent=idempotent,
                                       raise_for_status=False)
        status = response.status_code
        if status >= 500 or status == 429 or 300 <= status < 400:  # a redirect's body is not the answer
            raise_for_response(response)
        text = response.text or ""
        try:
            payload = json.loads(text, parse_float=Decimal)
        except ValueError:
            payload = None
        if payload is None:
            if _looks_like_html(text, response.headers.get("Content-Type", "")):
                title = _html_title(text)
                where = f" ({title})" if title else ""
                low = text.lower()
                if status in (401, 403) or any(w in low for w in ("api key", "login", "sign in", "unauthor")):
                    raise ProviderAuthError(
                        f"The panel answered with an HTML page{where} instead of JSON: the API key is probably "
                        "wrong or the URL is not the panel's API v2 endpoint.",
                        status_code=status,
                    )
                raise ProviderProtocolError(
                    f"The panel answered with an HTML page{where} instead of JSON (HTTP {status}); "
                    "check that the URL is the panel's API v2 endpoint.",
                    status_code=status,
                )
            snippet = " ".join(text.split())[:120]
            raise ProviderProtocolError(
                f"The panel's answer is not valid JSON (HTTP {status}): {snippet!r}", status_code=status
            )
        if isinstance(payload, dict) and payload.get("error") and not isinstance(payload.get("error"), dict):
            # A top-level error is for the whole call (often with HTTP 200).
            raise error_for(payload["error"], payload=payload, status_code=status)
        if status in (401, 403):
            raise ProviderAuthError(f"HTTP {status}", status_code=status)
        if status >= 400:
            raise ProviderValidationError(f"HTTP {status}", status_code=status, payload=payload)
        return payload

    def _expect(self, payload, kind, action):
        if not isinstance(payload, kind):
            raise ProviderProtocolError(
                f"Unexpected answer to “{action}”: expected a JSON {kind.__name__}, got {type(payload).__name__}.",
                payload=payload,
            )
        return payload

    # --- catalogue ---------------------------------------------------------------------------
    def services(self):
        payload = self.call("services", idempotent=True)
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]  # a few clones wrap the list
        rows = self._expect(payload, list, "services")
        # Thousands of rows: each field takes the shape panels nearly always send (str ids and
        # texts, int limits, bool flags, a Decimal rate from parse_float) without a call, and
        # only anything else goes through the to_* helpers; the values are the same either way.
        result = []
        append, make = result.append, PanelService._make
        for row in rows:
            if not isinstance(row, dict):
                continue
            get = row.get
            service_id = get("service", get("id"))
            service_id = service_id.strip() if type(service_id) is str else to_id(service_id)
            rate = get("rate")
            if type(rate) is not Decimal:
                rate = to_decimal(rate)
            if not service_id or rate is None:
                continue  # unusable entry: no id or no price
            minimum, maximum = get("min"), get("max")
            minimum = (minimum if type(minimum) is int else to_int(minimum)) or 1
            maximum = (maximum if type(maximum) is int else to_int(maximum)) or minimum
            refill, cancel, dripfeed = get("refill", False), get("cancel", False), get("dripfeed", False)
            append(make((
                service_id,
                str(get("name") or service_id)[:500],
                str(get("type") or "Default")[:64],
                str(get("category") or "")[:255],
                rate,
                minimum,
                maximum if maximum > minimum else minimum,
                refill if type(refill) is bool else to_bool(refill),
                cancel if type(cancel) is bool else to_bool(cancel),
                dripfeed if type(dripfeed) is bool else to_bool(dripfeed),
                str(get("desc") or get("description") or ""),
            )))
        return result

    # --- orders ------------------------------------------------------------------------------
    @staticmethod
    def order_fields(service_type, *, service, link=None, **values):
        """The `add` fields for a service type (unknown types are sent as Default plus any extras)."""
        kind = (service_type or "default").strip().lower()
        fields = {"service": service}
        if kind not in NO_LINK_TYPES:
            fields["link"] = link
        names = TYPE_FIELDS.get(kind, (*TYPE_FIELDS["default"], *values.keys()))
        for name in names:
            value = values.get(name)
            if value is None or value == "" or value == []:
                continue
            if isinstance(value, list | tuple):
                value = "\n".join(str(v) for v in value)
            fields[name] = value
        return fields

    def add(self, service_type="Default", **values):
        """Place an order; return the panel's order id. Never retried (the panel cannot deduplicate)."""
        fields = self.order_fields(service_type, **values)
        payload = self.call("add", idempotent=False, **fields)
        order_id = to_id(payload.get("order")) if isinstance(payload, dict) else ""
        if not order_id:
            # The panel answered without an error and without an id: it may have taken the order.
            raise UnknownOutcome(f"The panel accepted the request but sent no order id: {payload!r}"[:300])
        return order_id

    @staticmethod
    def _parse_status(entry):
        if not isinstance(entry, dict):
            return PanelOrderStatus(status=None, error=f"Unexpected status entry: {entry!r}"[:200])
        get = entry.get
        if get("error"):
            return PanelOrderStatus(status=None, error=str(entry["error"]))
        # The shapes panels nearly always send (a str status, a Decimal or str charge, int or str
        # counts) without a helper call; the values are the same either way.
        raw = get("status")
        raw = raw.strip() if type(raw) is str else str(raw or "").strip()
        status = STATUS_MAP.get(raw.lower())
        charge, start_count, remains, currency = get("charge"), get("start_count"), get("remains"), get("currency")
        return _new_status((
            status,
            raw,
            charge if type(charge) is Decimal else to_decimal(charge),
            start_count if type(start_count) is int else to_int(start_count),
            remains if type(remains) is int else to_int(remains),
            currency if type(currency) is str else str(currency or ""),
            "" if status else f"Unknown status {raw!r}",
        ))

    def status(self, order_id):
        payload = self.call("status", idempotent=True, order=order_id)
        return self._parse_status(self._expect(payload, dict, "status"))

    def statuses(self, order_ids):
        """`status` with `orders`: one call per 100 ids; returns {id: PanelOrderStatus}."""
        result = {}
        ids = [str(i) for i in order_ids]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            result.update(self.read_statuses(chunk, self.fetch_statuses(chunk)))
        return result

    # The two halves of one `statuses` call, apart so that a poll can read one batch's answer
    # while the next batch's call is on the wire.
    def fetch_statuses(self, order_ids):
        """One `status` call for up to 100 ids: the panel's answer, checked for shape only."""
        payload = self.call("status", idempotent=True, orders=",".join(str(i) for i in order_ids))
        if isinstance(payload, list):  # a few clones answer a list of {"order": id, ...}
            payload = {to_id(e.get("order")): e for e in payload if isinstance(e, dict)}
        return self._expect(payload, dict, "status")

    def read_statuses(self, order_ids, payload):
        """{id: PanelOrderStatus} for the ids asked about, from `fetch_statuses`' answer."""
        keyed = {(k.strip() if type(k) is str else to_id(k)): v for k, v in payload.items()}
        missing = PanelOrderStatus(status=None, error="Missing from the panel's answer")
        parse = self._parse_status
        return {
            order_id: parse(keyed[order_id]) if order_id in keyed else missing
            for order_id in map(str, order_ids)
        }

    # --- refills -----------------------------------------------------------------------------
    def refill(self, order_id):
        payload = self.call("refill", idempotent=False, order=order_id)
        refill_id = to_id(self._expect(payload, dict, "refill").get("refill"))
        if not refill_id:
            raise UnknownOutcome(f"The panel sent no refill id: {payload!r}"[:300])
        return refill_id

    def _multi(self, action, list_field, id_field, value_field, ids, idempotent):
        result = {}
        ids = [str(i) for i in ids]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            payload = self.call(action, idempotent=idempotent, **{list_field: ",".join(chunk)})
            if isinstance(payload, dict):  # keyed by id instead of a list
                payload = [{id_field: k, value_field: v} for k, v in payload.items()]
            for entry in self._expect(payload, list, action):
                if not isinstance(entry, dict):
                    continue
                value = entry.get(value_field)
                if isinstance(value, dict) and value.get("error"):
                    value = error_for(value["error"])
                result[to_id(entry.get(id_field))] = value
        return result

    def refills(self, order_ids):
        """{order id: refill id (str) or a ProviderError}."""
        raw = self._multi("refill", "orders", "order", "refill", order_ids, idempotent=False)
        return {k: (v if isinstance(v, Exception) else to_id(v)) for k, v in raw.items()}

    def refill_status(self, refill_id):
        payload = self._expect(self.call("refill_status", idempotent=True, refill=refill_id), dict, "refill_status")
        raw = str(payload.get("status") or "")
        return REFILL_STATUS_MAP.get(raw.strip().lower(), "pending")

    def refill_statuses(self, refill_ids):
        """{refill id: our refill status or a ProviderError}."""
        raw = self._multi("refill_status", "refills", "refill", "status", refill_ids, idempotent=True)
        return {
            k: (v if isinstance(v, Exception) else REFILL_STATUS_MAP.get(str(v).strip().lower(), "pending"))
            for k, v in raw.items()
        }

    # --- cancel, balance ---------------------------------------------------------------------
    def cancel(self, order_ids):
        """{order id: True or a ProviderError}."""
        raw = self._multi("cancel", "orders", "order", "cancel", order_ids, idempotent=False)
        return {k: (v if isinstance(v, Exception) else True) for k, v in raw.items()}

    def balance(self):
        payload = self._expect(self.call("balance", idempotent=True), dict, "balance")
        amount = to_decimal(payload.get("balance"))
        if amount is None:
            raise ProviderProtocolError(f"The panel sent no balance: {payload!r}"[:300], payload=payload)
        return amount, str(payload.get("currency") or "USD")

    def check_health(self):
        self.balance()
