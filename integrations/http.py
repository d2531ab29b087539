"""Outbound HTTP for every provider: `ProviderClient`.

Pooled sessions, a timeout per provider, retries with exponential backoff and full jitter for
idempotent calls only, a circuit breaker per provider, an IntegrationLog row per attempt with
secrets redacted, and the registry row's counters updated atomically.

Each attempt's log row and counter update are written together, in one transaction (one commit).
A bulk job making many calls in a row (the SMM poll) can hold them with `deferred_records()` and
write them in one transaction with its own writes (`flush_records()`); whatever is held is written
when the block ends, also when it ends with an error. A helper thread working for that block (the
poll fetching its next batch while the current one is written) joins it through `carry()`.
"""

import collections
import functools
import random
import threading
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from requests.adapters import HTTPAdapter

from . import errors
from .breaker import CircuitBreaker
from .redaction import redact_body, redact_form, redact_headers, redact_url

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "EISHRO-integrations-hub/1.0"

_sessions = {}
_sessions_lock = threading.Lock()


def session_for(key):
    """One pooled `requests.Session` per provider, shared by the threads of a process."""
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            _sessions[key] = session
        return session


def _truncate(text):
    limit = settings.INTEGRATION_LOG_BODY_LIMIT
    if text and len(text) > limit:
        return text[:limit] + f"… [{len(text) - limit} more characters]"
    return text or ""


class ProviderClient:
    def __init__(self, integration, *, timeout=None, retries=None, backoff=None):
        from .adapters import UnknownAdapter, adapter_class

        self.integration = integration
        config = integration.configuration or {}
        try:
            meta = adapter_class(integration.code).meta
            self.secret_names = frozenset(meta.secret_fields)
            default_timeout = meta.timeout
        except UnknownAdapter:
            self.secret_names, default_timeout = frozenset(), 10.0
        self.timeout = float(timeout or config.get("timeout") or default_timeout)
        self.retries = int(retries if retries is not None else config.get("retries", 2))
        self.backoff = float(backoff if backoff is not None else config.get("backoff", 0.5))
        self.breaker = CircuitBreaker(
            integration.pk,
            threshold=int(config.get("circuit_breaker_threshold", 5)),
            cooldown=float(config.get("circuit_breaker_cooldown", 30)),
        )
        self.session = session_for(integration.pk)
        self.secrets = integration.secret_values
        self._local = threading.local()  # this thread's held records (deferred_records)
        self._endpoints = {}  # URL -> the URL as requests sends it (without params)

    def url(self, path):
        if path.startswith(("http://", "https://")):
            return path
        base = self.integration.base_url.rstrip("/") + "/"
        return urljoin(base, path.lstrip("/")) if path else base.rstrip("/")

    def request(
        self,
        method,
        path="",
        *,
        params=None,
        data=None,
        json=None,
        headers=None,
        timeout=None,
        idempotent=None,
        retries=None,
        raise_for_status=True,
        breaker=True,
        request_id=None,
        user=None,
    ):
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 1 + (self.retries if retries is None else retries) if idempotent else 1
        request_id = request_id or uuid.uuid4().hex
        url = self.url(path)
        headers = {"X-Request-ID": request_id, **(headers or {})}
        timeout = timeout or self.timeout

        for attempt in range(1, attempts + 1):
            dirty = self.breaker.before_call() if breaker else False
            try:
                response = self._send(method, url, params, data, json, headers, timeout, request_id, user)
            except errors.ProviderError as exc:
                if breaker:
                    self.breaker.record_failure()
                if attempt < attempts and exc.transient:
                    self._sleep(attempt)
                    continue
                if isinstance(exc, errors.UnknownOutcome) and idempotent:
                    raise errors.ProviderUnavailable(str(exc)) from exc
                raise
            failed = response.status_code >= 500 or response.status_code == 429
            if breaker:
                if failed:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success(dirty)
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if raise_for_status:
                raise_for_response(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt, retry_after=None):
        if retry_after and str(retry_after).isdigit():
            time.sleep(min(float(retry_after), 30.0))
            return
        # Full jitter: spread retries of many workers instead of synchronising them.
        time.sleep(random.uniform(0, self.backoff * (2 ** (attempt - 1))))

    def _send(self, method, url, params, data, json_body, headers, timeout, request_id, user):
        from .models import IntegrationLog

        started_at = timezone.now()
        t0 = time.perf_counter()
        response, error, outcome, code = None, None, IntegrationLog.Outcome.SUCCESS, ""
        try:
            response = self.session.request(
                method, url, params=params, data=data, json=json_body, headers=headers, timeout=timeout
            )
        except requests.Timeout as exc:
            outcome, code = IntegrationLog.Outcome.TIMEOUT, "timeout"
            connect = isinstance(exc, requests.ConnectTimeout)
            # A read timeout after sending a write: the provider may have acted on it.
            error = (errors.ProviderUnavailable if connect else errors.UnknownOutcome)(
                f"Timed out after {timeout:g}s talking to {self.integration.display_name}."
            )
        except requests.RequestException as exc:
            outcome, code = IntegrationLog.Outcome.ERROR, "connection"
            error = errors.ProviderUnavailable(f"Could not reach {self.integration.display_name}: {_short(exc)}")
        duration_ms = (time.perf_counter() - t0) * 1000
        ok = response is not None and response.status_code < 400
        if response is not None and not ok:
            outcome, code = IntegrationLog.Outcome.ERROR, f"http_{response.status_code}"
        # The log row is built when it is written: a deferred block builds it at flush time, off the
        # path of a call that someone waits for (the poll's fetching thread).
        entry = functools.partial(
            self._log_entry,
            method,
            url,
            params,
            dict(data) if isinstance(data, dict) else data,
            json_body,
            headers,
            response,
            started_at,
            timezone.now(),
            duration_ms,
            outcome,
            error,
            code,
            request_id,
            user,
        )
        self._record(entry, ok, Decimal(f"{duration_ms:.2f}"))
        if error:
            raise error
        return response

    # --- log rows and counters ---------------------------------------------------------------
    def _record(self, entry, ok, duration_ms):
        held = getattr(self._local, "held", None)
        if held is not None:
            held.append((entry, ok, duration_ms))
            return
        entry = entry()
        with transaction.atomic(savepoint=False):
            entry.save(force_insert=True)
            self.integration.record_calls(1, 1 if ok else 0, duration_ms)

    @contextmanager
    def deferred_records(self):
        """Hold this thread's log rows and counter updates until `flush_records()` or the end of the
        block (which writes whatever is still held, also after an error)."""
        outer = getattr(self._local, "held", None)
        if outer is not None:  # nested: the outer block writes them
            yield self
            return
        self._local.held = collections.deque()
        try:
            yield self
        finally:
            try:
                self.flush_records()
            finally:
                self._local.held = None

    def carry(self, fn):
        """`fn` wrapped to run on another thread as part of this thread's `deferred_records()` block:
        the calls it makes are held with this thread's (a deque, so appends from both are safe)."""
        held = getattr(self._local, "held", None)

        def carried(*args, **kwargs):
            before = getattr(self._local, "held", None)
            self._local.held = held
            try:
                return fn(*args, **kwargs)
            finally:
                self._local.held = before

        return carried

    def flush_records(self):
        """Write the held log rows (one INSERT) and counter increments (one UPDATE) in one transaction
        (the caller's, if it has one open). Returns the number of calls written."""
        from .models import IntegrationLog

        held = getattr(self._local, "held", None)
        if not held:
            return 0
        # popleft, not a copy and a clear: a carried helper thread may append meanwhile.
        entries = [held.popleft() for _ in range(len(held))]
        with transaction.atomic(savepoint=False):
            IntegrationLog.objects.insert_many([entry() for entry, _, _ in entries])
            self.integration.record_calls(
                len(entries), sum(1 for _, ok, _ in entries if ok), sum(d for _, _, d in entries)
            )
        return len(entries)

    def _endpoint(self, method, url, params):
        if params:
            return requests.Request(method, url, params=params).prepare().url
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            if len(self._endpoints) > 256:
                self._endpoints.clear()
            endpoint = self._endpoints[url] = requests.Request(method, url).prepare().url
        return endpoint

    def _log_entry(
        self,
        method,
        url,
        params,
        data,
        json_body,
        headers,
        response,
        started_at,
        completed_at,
        duration_ms,
        outcome,
        error,
        code,
        request_id,
        user,
    ):
        from .models import IntegrationLog

        secrets, names = self.secrets, self.secret_names
        if json_body is None and isinstance(data, dict):
            request_body = redact_form(data, secrets, names)
        else:
            body = json_body if json_body is not None else data
            content_type = "application/json" if json_body is not None else "application/x-www-form-urlencoded"
            request_body = redact_body(body, content_type, secrets, names)
        return IntegrationLog(
            integration=self.integration,
            request_id=request_id,
            endpoint=redact_url(self._endpoint(method, url, params), secrets, names)[:500],
            method=method,
            request_headers=redact_headers(headers, secrets),
            request_body=_truncate(request_body),
            response_status=response.status_code if response is not None else None,
            response_headers=redact_headers(dict(response.headers), secrets) if response is not None else None,
            response_body=_truncate(
                redact_body(response.text, response.headers.get("Content-Type", ""), secrets, names)
            )
            if response is not None
            else "",
            request_duration=Decimal(f"{duration_ms:.3f}"),
            started_at=started_at,
            completed_at=completed_at,
            status=outcome,
            error_message=str(error) if error else "",
            error_code=code,
            user=user if getattr(user, "pk", None) else None,
        )


def _short(exc):
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def raise_for_response(response):
    """Map an HTTP error status to the exception family, keeping the provider's message."""
    status = response.status_code
    if status < 400:
        return
    message = _provider_message(response)
    kwargs = {"provider_message": message, "status_code": status}
    if status in (401, 403):
        raise errors.ProviderAuthError(**kwargs)
    if status == 429:
        raise errors.ProviderRateLimited(retry_after=response.headers.get("Retry-After"), **kwargs)
    if status >= 500:
        raise errors.ProviderUnavailable(**kwargs)
    raise errors.ProviderValidationError(**kwargs)


def _provider_message(response):
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        for key in ("error", "message", "Message", "detail", "errors"):
            if data.get(key):
                return str(data[key])
    return f"HTTP {response.status_code}"
