"""A faithful local simulator of three "panel API v2" panels: jap, smmkings, secsers.

Mounted under /sandbox/smm/<code>/api/v2 when SANDBOX_ENABLED. State lives in the database
(SandboxPanel, SandboxPanelOrder, SandboxPanelRefill) so the web server and a worker see the same
panel. Orders progress with time (`step_seconds` per phase): Pending, In progress (some pass
through Processing), then Completed, or Partial for about one order in seven. Each panel has its own
deterministic catalogue (over a thousand services) and its own quirks:
  jap       numbers as strings, HTTP 200 `{"error": ...}` for everything, bad key -> JSON error
  smmkings  numbers as numbers, `service` as a string, `dripfeed` present, bad key -> an HTML page
  secsers   `desc` present, `cancel` missing on some services, no `currency` in status answers,
            bad key -> HTTP 401 with a JSON error
Faults from integrations.sandbox apply first (`set_fault("smm", code, ...)`).
"""

import random
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.db import transaction
from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone

from integrations.sandbox import simulated

from .models import SandboxPanel, SandboxPanelOrder, SandboxPanelRefill

PANELS = {
    # code: (display name, first service id, default catalogue size, price factor)
    "jap": ("Just Another Panel", 1, 1400, Decimal("1.00")),
    "smmkings": ("SMM Kings", 2001, 1250, Decimal("1.15")),
    "secsers": ("Secsers", 101, 1100, Decimal("0.85")),
}
DEFAULT_PANEL = ("Panel", 1, 1000, Decimal("1"))

PLATFORMS = [
    ("Instagram", ["Followers", "Likes", "Views", "Story Views", "Comments", "Saves", "Reel Views", "Live Viewers",
                   "Comment Likes", "Mentions", "Auto Likes", "Impressions", "Poll Votes"]),
    ("TikTok", ["Followers", "Likes", "Views", "Shares", "Comments", "Saves", "Live Viewers", "Comment Likes"]),
    ("YouTube", ["Subscribers", "Views", "Likes", "Watch Time", "Comments", "Shorts Views", "Live Viewers"]),
    ("Facebook", ["Page Likes", "Followers", "Post Likes", "Video Views", "Comments", "Reactions", "Group Members"]),
    ("Twitter / X", ["Followers", "Likes", "Retweets", "Views", "Comments", "Poll Votes", "Bookmarks"]),
    ("Telegram", ["Channel Members", "Post Views", "Reactions", "Poll Votes", "Group Members"]),
    ("Spotify", ["Plays", "Followers", "Monthly Listeners", "Playlist Followers", "Saves"]),
    ("Twitch", ["Followers", "Live Viewers", "Channel Views"]),
    ("SoundCloud", ["Plays", "Likes", "Followers", "Reposts"]),
    ("LinkedIn", ["Followers", "Connections", "Post Likes", "Comments"]),
    ("Threads", ["Followers", "Likes", "Reposts"]),
    ("Snapchat", ["Followers", "Story Views"]),
    ("Website Traffic", ["Visitors from Google", "Visitors from Social", "SEO Keywords Traffic", "Direct Traffic"]),
]
QUALITIES = ["Real", "HQ", "Non Drop", "Instant", "Cheapest", "Premium", "Arab", "Libya Targeted", "Worldwide",
             "Mixed", "Female", "USA", "Europe", "Super Fast", "Old Accounts"]
GUARANTEES = ["No Refill", "R30", "R60", "R90", "R365", "Lifetime Refill"]
SPEEDS = ["0-1 Hour Start", "Day 10K", "Day 50K", "Hour 1K", "Slow", "Max 100K"]


def _service_type(kind):
    if kind == "Comments":
        return "Custom Comments"
    if kind == "Mentions":
        return "Mentions Custom List"
    if kind == "Comment Likes":
        return "Comment Likes"
    if kind == "Poll Votes":
        return "Poll"
    if kind == "Auto Likes":
        return "Subscriptions"
    if kind == "SEO Keywords Traffic":
        return "SEO"
    return "Default"


@lru_cache(maxsize=16)
def catalogue(code, size=0):
    """The panel's services, generated deterministically: {service id (str): dict}."""
    _name, first_id, default_size, factor = PANELS.get(code, DEFAULT_PANEL)
    size = size or default_size
    rng = random.Random(f"smm-sandbox-{code}")
    combos = [(p, k) for p, kinds in PLATFORMS for k in kinds]
    services = {}
    for i in range(size):
        platform, kind = combos[i % len(combos)]
        quality = rng.choice(QUALITIES)
        guarantee = rng.choice(GUARANTEES)
        stype = _service_type(kind) if i >= 5 else ["Default", "Custom Comments", "Package", "Poll", "Subscriptions"][i]
        if i % 97 == 13:
            stype = "Package"
        rate = (Decimal(rng.randint(5, 9000)) / Decimal(1000) * factor).quantize(Decimal("0.0001"))
        minimum = rng.choice([10, 20, 50, 100, 100, 500])
        maximum = rng.choice([1000, 5000, 10000, 50000, 100000, 1000000])
        if stype == "Package":
            minimum = maximum = 1
        if stype == "Custom Comments":
            minimum, maximum = 1, 1000
        sid = first_id + i
        services[str(sid)] = {
            "service": sid,
            "name": f"{platform} {kind} [{quality}] [{guarantee}] [{rng.choice(SPEEDS)}]",
            "type": stype,
            "category": f"{platform} {kind}",
            "rate": rate,
            "min": minimum,
            "max": maximum,
            "refill": guarantee != "No Refill",
            "cancel": rng.random() < 0.6,
            "dripfeed": stype == "Default" and rng.random() < 0.5,
            "desc": f"{quality} {kind.lower()} for {platform}. {guarantee}. Start 0-6 hours.",
        }
    return services


def panel_for(code):
    panel, _ = SandboxPanel.objects.get_or_create(code=code, defaults={"api_key": f"sandbox-{code}-key"})
    return panel


def _num(code, value):
    """Numbers as each panel sends them."""
    if code == "smmkings":
        return float(value) if isinstance(value, Decimal) else value
    return str(value)


def _service_out(code, s):
    out = {
        "service": str(s["service"]) if code == "smmkings" else s["service"],
        "name": s["name"],
        "type": s["type"],
        "category": s["category"],
        "rate": _num(code, s["rate"]),
        "min": _num(code, s["min"]),
        "max": _num(code, s["max"]),
        "refill": s["refill"],
        "cancel": s["cancel"],
    }
    if code == "smmkings":
        out["dripfeed"] = s["dripfeed"]
    if code == "secsers":
        out["desc"] = s["desc"]
        if s["service"] % 5 == 0:
            del out["cancel"]  # missing field quirk
    return out


def _error(code, message, status=200):
    return JsonResponse({"error": message}, status=status)


def _order_state(panel, order, now=None):
    """(status, remains) of a simulated order at `now`."""
    if order.canceled:
        return "Canceled", order.quantity
    elapsed = ((now or timezone.now()) - order.created_at).total_seconds()
    step = max(panel.step_seconds, 0.001)
    if elapsed < step:
        return "Pending", order.quantity
    if elapsed < 3 * step:
        done = int(order.quantity * (elapsed - step) / (2 * step))
        label = "Processing" if order.pk % 3 == 0 and elapsed > 2 * step else "In progress"
        return label, max(order.quantity - done, 0)
    if order.pk % 7 == 0:
        return "Partial", max(order.quantity // 5, 1)
    return "Completed", 0


def _status_out(panel, order, now):
    status, remains = _order_state(panel, order, now)
    charge = order.charge
    if status == "Partial" and order.quantity:
        charge = (order.charge * (order.quantity - remains) / order.quantity).quantize(Decimal("0.00001"))
    if status == "Canceled":
        charge = Decimal("0")
    out = {
        "charge": _num(panel.code, charge),
        "start_count": _num(panel.code, order.start_count),
        "status": status,
        "remains": _num(panel.code, remains),
        "currency": "USD",
    }
    if panel.code == "secsers":
        del out["currency"]
    return out


def _add(panel, post):
    services = catalogue(panel.code, panel.catalogue_size)
    service = services.get(str(post.get("service", "")).strip())
    if service is None:
        return {"error": "Incorrect service ID"}
    stype = service["type"]
    link = post.get("link", "").strip()
    if stype != "Subscriptions" and not link.startswith(("http://", "https://")) and "." not in link:
        return {"error": "Incorrect link"}
    params = {k: v for k, v in post.items() if k not in ("key", "action", "service", "link", "quantity")}
    if stype == "Package":
        quantity = 1
    elif stype in ("Custom Comments", "Mentions Custom List"):
        text = post.get("comments") or post.get("usernames") or ""
        quantity = len([line for line in text.replace("\r\n", "\n").split("\n") if line.strip()])
        if not quantity:
            return {"error": "Incorrect request"}
    elif stype == "Subscriptions":
        quantity = int(post.get("max") or 0)
        if not post.get("username") or not quantity:
            return {"error": "Incorrect request"}
    else:
        try:
            quantity = int(post.get("quantity", ""))
        except ValueError:
            return {"error": "Incorrect request"}
        if stype == "Poll" and not post.get("answer_number"):
            return {"error": "Incorrect request"}
    if stype not in ("Package", "Subscriptions"):
        if quantity < service["min"]:
            return {"error": f"Quantity less than minimal {service['min']}"}
        if quantity > service["max"]:
            return {"error": f"Quantity more than maximal {service['max']}"}
    runs = int(post.get("runs") or 1)
    charge = (service["rate"] * quantity * runs / 1000) if stype != "Package" else service["rate"]
    charge = Decimal(charge).quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
    with transaction.atomic():
        # Charge the balance with a conditional update: two concurrent orders cannot overdraw it.
        if not SandboxPanel.objects.filter(pk=panel.pk, balance__gte=charge).update(balance=F("balance") - charge):
            return {"error": "Not enough funds on balance"}
        order = SandboxPanelOrder.objects.create(
            panel=panel, service=str(service["service"]), link=link, quantity=quantity, params=params, charge=charge,
            start_count=random.Random(link).randint(0, 50000),
        )
    return {"order": order.pk}


def _orders_of(panel, ids):
    wanted = [int(i) for i in ids if i.strip().isdigit()]
    return {str(o.pk): o for o in SandboxPanelOrder.objects.filter(panel=panel, pk__in=wanted)}


def _split(value, limit=100):
    return [v.strip() for v in str(value or "").split(",") if v.strip()][:limit]


def _refill_one(panel, order, now):
    if order is None:
        return {"error": "Incorrect order ID"}
    service = catalogue(panel.code, panel.catalogue_size).get(order.service) or {}
    status, _ = _order_state(panel, order, now)
    if not service.get("refill") or status not in ("Completed", "Partial"):
        return {"error": "Order not eligible for refill."}
    return SandboxPanelRefill.objects.create(order=order).pk


def _refill_state(panel, refill, now):
    elapsed = (now - refill.created_at).total_seconds()
    if refill.pk % 11 == 0:
        return "Rejected"
    return "Pending" if elapsed < panel.step_seconds else ("In progress" if elapsed < 2 * panel.step_seconds
                                                          else "Completed")


def _cancel_one(panel, order, now):
    if order is None:
        return {"error": "Incorrect order ID"}
    service = catalogue(panel.code, panel.catalogue_size).get(order.service) or {}
    status, _ = _order_state(panel, order, now)
    if not service.get("cancel") or status not in ("Pending", "In progress"):
        return {"error": "Cancel is not available for this order"}
    with transaction.atomic():
        if SandboxPanelOrder.objects.filter(pk=order.pk, canceled=False).update(canceled=True):
            SandboxPanel.objects.filter(pk=panel.pk).update(balance=F("balance") + order.charge)
    return 1


def handle(panel, post):
    """Answer one API call: (payload, http status)."""
    action = post.get("action", "")
    now = timezone.now()
    if action == "services":
        return [_service_out(panel.code, s) for s in catalogue(panel.code, panel.catalogue_size).values()]
    if action == "balance":
        panel.refresh_from_db(fields=["balance"])
        return {"balance": _num(panel.code, panel.balance.quantize(Decimal("0.00001"))), "currency": "USD"}
    if action == "add":
        return _add(panel, post)
    if action == "status":
        if post.get("orders"):
            ids = _split(post["orders"])
            orders = _orders_of(panel, ids)
            return {i: (_status_out(panel, orders[i], now) if i in orders else {"error": "Incorrect order ID"})
                    for i in ids}
        orders = _orders_of(panel, [str(post.get("order", ""))])
        if not orders:
            return {"error": "Incorrect order ID"}
        return _status_out(panel, next(iter(orders.values())), now)
    if action == "refill":
        if post.get("orders"):
            ids = _split(post["orders"])
            orders = _orders_of(panel, ids)
            return [{"order": int(i) if i.isdigit() else i, "refill": _refill_one(panel, orders.get(i), now)}
                    for i in ids]
        orders = _orders_of(panel, [str(post.get("order", ""))])
        result = _refill_one(panel, next(iter(orders.values()), None), now)
        return result if isinstance(result, dict) else {"refill": str(result)}
    if action == "refill_status":
        if post.get("refills"):
            ids = _split(post["refills"])
            refills = {str(r.pk): r for r in SandboxPanelRefill.objects.filter(
                order__panel=panel, pk__in=[int(i) for i in ids if i.isdigit()])}
            return [{"refill": int(i) if i.isdigit() else i,
                     "status": _refill_state(panel, refills[i], now) if i in refills else {"error": "Refill not found"}}
                    for i in ids]
        refill = SandboxPanelRefill.objects.filter(order__panel=panel, pk=str(post.get("refill", "0"))
                                                   if str(post.get("refill", "")).isdigit() else 0).first()
        if refill is None:
            return {"error": "Refill not found"}
        return {"status": _refill_state(panel, refill, now)}
    if action == "cancel":
        ids = _split(post.get("orders") or post.get("order"))
        if not ids:
            return {"error": "Incorrect request"}
        orders = _orders_of(panel, ids)
        return [{"order": int(i) if i.isdigit() else i, "cancel": _cancel_one(panel, orders.get(i), now)} for i in ids]
    return {"error": "Incorrect request"}


BAD_KEY_HTML = """<!DOCTYPE html><html><head><title>Login | SMM Kings</title></head>
<body><h1>Please sign in</h1><form action="/login"><input name="username"></form></body></html>"""


@simulated("smm")
def api_v2(request, code):
    if request.method != "POST":
        return _error(code, "Incorrect request", status=405 if code == "secsers" else 200)
    panel = panel_for(code)
    if request.POST.get("key", "") != panel.api_key:
        if code == "smmkings":
            return HttpResponse(BAD_KEY_HTML, content_type="text/html; charset=utf-8")
        if code == "secsers":
            return _error(code, "Invalid API key", status=401)
        return _error(code, "Invalid API key")
    payload = handle(panel, request.POST)
    return JsonResponse(payload, safe=False)


urlpatterns = [path("smm/<str:code>/api/v2", api_v2, name="sandbox-smm-api")]
