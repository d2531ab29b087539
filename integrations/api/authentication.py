"""Token authentication that limits failed attempts per source address.

A token names no account until it is right, so failures are counted per address (the client's, see
integrations.lockout.client_address). After API_TOKEN_FAILURE_LIMIT failures within
API_TOKEN_FAILURE_COOLOFF_SECONDS the address gets 429 with Retry-After for that long, whatever
token it sends: checking tokens during the lock would turn 429/200 into an oracle for the right one.
Successes are never limited and never reset the count (a merchant's own valid token must not buy
unlimited guesses at the others'). Counts live in the shared cache, so every web process agrees."""

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from integrations.lockout import client_address

logger = logging.getLogger(__name__)

_LOCKED = "auth:token:locked:{address}"
_FAILURES = "auth:token:failures:{address}:{window}"


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        if not self._offers_a_token(request):
            return None  # nothing guessed: session or anonymous requests are not counted
        address = client_address(request) or "unknown"
        wait = self._locked_for(address)
        if wait:
            raise self._refusal(wait)
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            wait = self._count_failure(address)
            if wait:
                raise self._refusal(wait) from None
            raise

    def _offers_a_token(self, request):
        words = get_authorization_header(request).split()
        return bool(words) and words[0].lower() == self.keyword.lower().encode()

    @staticmethod
    def _refusal(wait):
        return Throttled(wait=wait, detail=_("Too many failed authentication attempts from your address."))

    @staticmethod
    def _locked_for(address):
        """Seconds the address is still locked for, 0 if it is not (or if the cache cannot tell)."""
        try:
            until = cache.get(_LOCKED.format(address=address))
        except Exception as exc:  # noqa: BLE001 - any cache failure: authentication still answers
            _cache_down(exc)
            return 0
        if until is None:
            return 0
        return max(1, math.ceil(until - time.time()))

    @staticmethod
    def _count_failure(address):
        """Count one failure; when it reaches the limit, lock the address and return the lock's length."""
        limit = settings.API_TOKEN_FAILURE_LIMIT
        cooloff = settings.API_TOKEN_FAILURE_COOLOFF_SECONDS
        now = time.time()
        # One counter per window of the cool-off's length: a fresh key per window needs no expiry
        # to be exact (the file cache's incr would reset the expiry at every failure).
        key = _FAILURES.format(address=address, window=int(now // cooloff))
        try:
            cache.add(key, 0, timeout=cooloff)
            try:
                failures = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=cooloff)
                failures = 1
            if failures < limit:
                logger.info("API authentication failed from %s (%d of %d)", address, failures, limit)
                return 0
            cache.set(_LOCKED.format(address=address), now + cooloff, timeout=cooloff)
        except Exception as exc:  # noqa: BLE001 - any cache failure: the caller answers 401 as usual
            _cache_down(exc)
            return 0
        logger.warning("API authentication locked for %s after %d failed attempts: refused for %d s",
                       address, failures, cooloff)
        return cooloff


def _cache_down(exc):
    # Fail open, loudly: refusing every API call because the cache is down would be an outage of its
    # own, and tokens are 160 random bits; the operator sees this line and restores the cache.
    logger.warning("API authentication: failed attempts not counted, the cache is unavailable (%s: %s)",
                   type(exc).__name__, exc)
