"""Who is knocking, and what a locked-out operator is told.

Failed sign-ins are limited in two places: the admin's login (django-axes, per account and address)
and the API's tokens (integrations.api.authentication, per address). Both must count the same
address, and count the client's, not the TLS proxy's, hence `client_address`."""

import math

from django.conf import settings
from django.contrib import admin
from django.db.models import Max
from django.shortcuts import render
from django.utils import timezone


def client_address(request):
    """The client's address: REMOTE_ADDR, or, behind TRUSTED_PROXY_COUNT proxies that each append to
    X-Forwarded-For, the entry the outermost trusted proxy wrote.

    Entries left of that one are whatever the client sent and are never believed: trusting them would
    let an attacker pick a fresh address for every guess."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def _seconds_left(request, credentials):
    """Seconds until the lock lifts: the cool-off from the latest counted failure of this account at
    this address (the database handler's AccessAttempt), the whole cool-off if none is found."""
    from axes.helpers import get_client_username, get_cool_off
    from axes.models import AccessAttempt

    cool_off = get_cool_off(request)
    latest = AccessAttempt.objects.filter(
        username=get_client_username(request, credentials), ip_address=client_address(request)
    ).aggregate(latest=Max("attempt_time"))["latest"]
    if latest is None:
        return int(cool_off.total_seconds())
    return max(1, math.ceil((latest + cool_off - timezone.now()).total_seconds()))


def admin_lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the admin's own page (its header, its direction), 429 and
    Retry-After, so that a person and a script both know when to come back."""
    seconds = _seconds_left(request, credentials)
    context = {
        **admin.site.each_context(request),
        "minutes": max(1, math.ceil(seconds / 60)),
    }
    response = render(request, "admin/lockout.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
