"""The buyer's checkout page, served by us at /pay/<public id>/ (Payment.public_id: random, never the
sequential id or our reference, so one buyer's link does not lead to another's payment).

- A card payment (Moamalat) shows the Lightbox: the page loads the provider row's environment script
  (`Moamalat.lightbox_url`: the gateway's, or the simulator's in the demo) and our own
  `checkout.js`, which hands `Lightbox.Checkout.configure` the server-signed configuration
  (`Moamalat.lightbox_configuration`) and the three callbacks. The callbacks only show what happened
  and ask us to refresh the payment: the gateway's notification (or reconciliation) is what settles
  it, never the buyer's browser.
- A bank transfer shows the reference to quote and the bank; cash on delivery its note; a wallet
  its one-time code form (POSTed to `confirm/`, CSRF-protected, throttled per payment).
- A payment that is no longer open shows its state instead.

The page carries no secret: only what Lightbox.Checkout.configure needs (MID, TID, amount,
reference, time, hash). Its Content-Security-Policy allows scripts from our origin and the gateway's
script host only, and frames from that host only (the Lightbox window).
"""

import logging
from urllib.parse import urlsplit

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from integrations.cache_outage import CACHE_ERRORS, cache_down
from integrations.errors import ProviderError

from . import services
from .interface import NextStep
from .models import OPEN_STATES, Payment, PaymentStatus

logger = logging.getLogger("payments")

# A buyer's wallet code: this many tries per payment in the window, whoever sends them. A six-digit
# code then holds against guessing (5 in a million per window), and the wallet's own limit adds to it.
CODE_TRIES = 5
CODE_WINDOW_S = 15 * 60
# The refresh button asks the gateway at most once in this time per payment; more often it reads
# our row, so a page left open (or a script) cannot turn into a flood of FilterTransactions.
REFRESH_EVERY_S = 5
WALLET_STEPS = (NextStep.OTP,)
ASSET_TYPES = {"checkout.js": "text/javascript; charset=utf-8", "checkout.css": "text/css; charset=utf-8"}


def origin_of(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(gateway_origin=""):
    extra = f" {gateway_origin}" if gateway_origin else ""
    frames = gateway_origin or "'none'"
    return "; ".join([
        "default-src 'none'",
        f"script-src 'self'{extra}",
        f"style-src 'self'{extra}",
        f"img-src 'self' data:{extra}",
        f"frame-src {frames}",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def _payment(public_id):
    return get_object_or_404(Payment.objects.select_related("integration", "bank"), public_id=public_id)


def _closed_by_clock(payment):
    return payment.status in OPEN_STATES and payment.expires_at is not None and payment.expires_at <= timezone.now()


def _lightbox(payment):
    """(script URL, configuration) of a card payment, or (None, None) when the row cannot sign."""
    adapter = payment.integration.adapter
    try:
        return adapter.lightbox_url, adapter.lightbox_configuration(payment)
    except ProviderError as exc:
        # A misconfigured row (no key, a key that is not hex): the operator's problem, not the buyer's
        # to read; the page says the card window is unavailable.
        logger.error("Checkout of %s: the Lightbox cannot be configured: %s", payment.reference, exc)
        return None, None


def _context(payment):
    status = payment.status
    context = {"payment": payment, "status": status, "status_label": payment.get_status_display(),
               "step": payment.next_step, "data": payment.provider_data or {}, "lightbox_url": "",
               "expired_by_clock": _closed_by_clock(payment), "show": "state"}
    if status == PaymentStatus.PENDING and not context["expired_by_clock"]:
        if payment.next_step == NextStep.LIGHTBOX and payment.integration_id:
            url, configuration = _lightbox(payment)
            if url:
                context.update(show="lightbox", lightbox_url=url, lightbox=configuration)
            else:
                context["show"] = "unavailable"
        elif payment.next_step in (NextStep.TRANSFER, NextStep.ON_DELIVERY, *WALLET_STEPS):
            context["show"] = payment.next_step
    return context


def _respond(request, payment, context, status=200):
    gateway_origin = origin_of(context["lightbox_url"]) if context.get("lightbox_url") else ""
    response = render(request, "payments/checkout.html", context, status=status)
    response["Content-Security-Policy"] = content_security_policy(gateway_origin)
    response["Referrer-Policy"] = "strict-origin"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@never_cache
@ensure_csrf_cookie
def checkout_page(request, public_id):
    payment = _payment(public_id)
    return _respond(request, payment, _context(payment))


@require_POST
@csrf_protect
def checkout_refresh(request, public_id):
    """What the page's callbacks call: the payment's state, asked at the gateway at most once per
    REFRESH_EVERY_S per payment (an open card payment only)."""
    payment = _payment(public_id)
    if payment.status in OPEN_STATES and payment.integration_id and _may_refresh(payment):
        try:
            services.refresh_status(payment)
        except ProviderError as exc:
            logger.info("Checkout refresh of %s failed: %s", payment.reference, exc)
        payment.refresh_from_db()
    return JsonResponse({"status": payment.status, "label": str(payment.get_status_display()),
                         "open": payment.status in OPEN_STATES})


def _may_refresh(payment):
    try:
        return cache.add(f"payments:checkout-refresh:{payment.pk}", 1, REFRESH_EVERY_S)
    except CACHE_ERRORS as exc:
        # Without the cache the buyer's button still reads our row; reconciliation asks the gateway.
        cache_down("the checkout refresh limit", exc, "answers from our row only")
        return False


def code_tries_left(payment):
    """Count one try of a code on `payment`, whoever sends it (this page or the API's confirm); None
    when the cache cannot count (then no code is checked at all)."""
    key = f"payments:checkout-code:{payment.pk}"
    try:
        cache.add(key, 0, CODE_WINDOW_S)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, CODE_WINDOW_S)
            used = 1
    except CACHE_ERRORS as exc:
        # Refused rather than unlimited: an unthrottled form is a code-guessing oracle.
        cache_down("the wallet code limit", exc, "refuses codes")
        return None
    return CODE_TRIES - used


@require_POST
@csrf_protect
def checkout_confirm(request, public_id):
    """The wallet's one-time code, POSTed by the page's form."""
    payment = _payment(public_id)
    if payment.next_step not in WALLET_STEPS:
        raise Http404
    context = _context(payment)
    if payment.status != PaymentStatus.PENDING or context["expired_by_clock"]:
        return redirect("payment-checkout", public_id=payment.public_id)
    left = code_tries_left(payment)
    if left is None or left < 0:
        context["form_error"] = _("Too many codes were tried. Wait a few minutes, then try again.")
        response = _respond(request, payment, context, status=429)
        response["Retry-After"] = str(CODE_WINDOW_S)
        return response
    try:
        services.confirm_wallet(payment, request.POST.get("code", ""))
    except ValidationError as exc:
        messages = exc.message_dict.get("code") if hasattr(exc, "message_dict") else exc.messages
        context["form_error"] = " ".join(messages or exc.messages)
        return _respond(request, payment, context, status=400)
    except ProviderError as exc:
        logger.info("Wallet confirmation of %s failed: %s", payment.reference, exc)
        context["form_error"] = _("The wallet did not answer. Your payment is being checked; do not pay again.")
        payment.refresh_from_db()
        context.update(_context(payment), form_error=context["form_error"])
        return _respond(request, payment, context, status=502)
    return redirect("payment-checkout", public_id=payment.public_id)


@require_GET
def checkout_asset(request, name):
    """The page's own script and style, from our origin (the CSP allows no inline code)."""
    if name not in ASSET_TYPES:
        raise Http404
    response = HttpResponse(render_to_string(f"payments/{name}"), content_type=ASSET_TYPES[name])
    response["Cache-Control"] = "public, max-age=3600"
    return response


def checkout_url(payment):
    return reverse("payment-checkout", args=[payment.public_id])
