"""HTTP to providers: `ProviderClient`, the HTTP transport of the traced call (`tracing.py`).

What is HTTP's own lives here: a pooled `requests` session per provider, the timeout, retries with
exponential backoff and full jitter for idempotent calls only, the mapping of HTTP statuses and
`requests` faults into `integrations.errors`, and the destination check at connection time
(`CheckedHTTPAdapter`). Redirects are never followed: a provider's redirect would carry the
merchant's key to wherever it points.
"""

import functools
import html
import json
import random
import re
import threading
import time
from urllib.parse import quote, quote_plus

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from . import addresses, errors
from .models import Transport
from .redaction import MASK
from .tracing import Tracer

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "EISHRO-integrations-hub/1.0"


# --- the destination check, when connecting -------------------------------------------------------
class _Checked:
    def _new_conn(self):
        # Resolve and check here, then connect to the address checked: urllib3 would otherwise
        # resolve the name again. TLS still verifies the certificate against the name (self.host).
        infos = addresses.resolve(self.host, self.port)
        self._dns_host = infos[0][4][0]
        return super()._new_conn()


class CheckedHTTPConnection(_Checked, HTTPConnection):
    pass


class CheckedHTTPSConnection(_Checked, HTTPSConnection):
    pass


class CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedHTTPAdapter(HTTPAdapter):
    """Every connection it opens goes to a checked public address (see `integrations.addresses`)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": CheckedHTTPConnectionPool,
                                                   "https": CheckedHTTPSConnectionPool}


_sessions = {}
_sessions_lock = threading.Lock()


def session_for(key):
    """One pooled `requests.Session` per provider, shared by the threads of a process."""
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            # No proxy, .netrc or CA bundle from the environment: where a provider's key goes is
            # decided by its row only.
            session.trust_env = False
            adapter = CheckedHTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            _sessions[key] = session
        return session


def _never_sent(exc):
    """Whether a `requests` error happened before the request left us (no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def default_outage(response):
    return response.status_code >= 500 or response.status_code == 429


def _content_type(headers, data, json_body):
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return value
    if json_body is not None:
        return "application/json"
    if isinstance(data, dict | list | tuple):
        return "application/x-www-form-urlencoded"
    return ""


class ProviderClient:
    transport = Transport.HTTP

    def __init__(self, integration, *, timeout=None, retries=None, backoff=None, transport=None):
        self.integration = integration
        self.tracer = Tracer(integration, transport=transport or self.transport)
        config = integration.configuration or {}
        self.timeout = float(timeout or self.tracer.timeout)
        self.retries = int(retries if retries is not None else config.get("retries", 2))
        self.backoff = float(backoff if backoff is not None else config.get("backoff", 0.5))
        self.breaker = self.tracer.breaker
        self.session = session_for(integration.pk)
        self._endpoints = {}  # URL -> the URL as requests sends it (without params)

    def url(self, path):
        if path.startswith(("http://", "https://")):
            return path
        base = self.integration.base_url.rstrip("/") + "/"
        return requests.compat.urljoin(base, path.lstrip("/")) if path else base.rstrip("/")

    def request(
        self,
        method,
        path="",
        *,
        operation="",
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
        outage=default_outage,
    ):
        """One HTTP call, retried when idempotent. `outage(response)` says whether an answer counts
        towards the breaker (a SOAP fault arrives as a 500 and does not)."""
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 1 + (self.retries if retries is None else retries) if idempotent else 1
        url = self.url(path)
        timeout = timeout or self.timeout
        operation = operation or f"{method} {path or '/'}"

        for attempt in range(1, attempts + 1):
            try:
                response = self._send(operation, method, url, params, data, json, headers, timeout, request_id,
                                      user, breaker, outage)
            except errors.ProviderError as exc:
                if attempt < attempts and exc.transient and not isinstance(exc, errors.CircuitOpen):
                    self._sleep(attempt)
                    continue
                if isinstance(exc, errors.UnknownOutcome) and idempotent:
                    raise errors.ProviderUnavailable(str(exc)) from exc
                raise
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

    def _send(self, operation, method, url, params, data, json_body, headers, timeout, request_id, user, breaker,
              outage):
        name = self.integration.display_name
        with self.tracer.call(operation, endpoint=lambda: self._endpoint(method, url, params), method=method,
                              breaker=breaker, request_id=request_id, user=user) as call:
            headers = {"X-Request-ID": call.request_id, **(headers or {})}
            call.request(json_body if json_body is not None else (dict(data) if isinstance(data, dict) else data),
                         content_type=_content_type(headers, data, json_body), headers=headers)
            try:
                response = self.session.request(method, url, params=params, data=data, json=json_body,
                                                headers=headers, timeout=timeout, allow_redirects=False)
            except requests.Timeout as exc:
                if _never_sent(exc):
                    raise call.fail(errors.ProviderUnavailable(
                        f"Timed out after {timeout:g}s connecting to {name}.", sent=False),
                        code="timeout", timed_out=True) from exc
                # A read timeout after sending: the provider may have acted on it.
                raise call.fail(errors.UnknownOutcome(f"Timed out after {timeout:g}s talking to {name}.", sent=True),
                                code="timeout", timed_out=True) from exc
            except requests.RequestException as exc:
                if _never_sent(exc):
                    raise call.fail(errors.ProviderUnavailable(f"Could not reach {name}: {_short(exc)}", sent=False),
                                    code="connection") from exc
                # The connection broke after the request went out: as uncertain as a read timeout.
                raise call.fail(errors.UnknownOutcome(f"The connection to {name} broke: {_short(exc)}"),
                                code="connection") from exc
            _scrub(response, self.tracer.secrets)
            status = response.status_code
            call.response(lambda: response.text, status=status, content_type=response.headers.get("Content-Type", ""),
                          headers=lambda: dict(response.headers),
                          code=f"http_{status}" if status >= 300 else "", outage=outage(response))
        return response

    def _endpoint(self, method, url, params):
        if params:
            return requests.Request(method, url, params=params).prepare().url
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            if len(self._endpoints) > 256:
                self._endpoints.clear()
            endpoint = self._endpoints[url] = requests.Request(method, url).prepare().url
        return endpoint


def _scrub(response, secrets):
    """Mask this row's secrets in the provider's answer before anyone reads it. A provider that
    echoes the key back ("Invalid key sk_…", an HTML error page quoting the request) would otherwise
    put it into error messages, stored errors, alerts and API answers: every reader downstream gets
    the masked text, so none of them has to remember to redact. The key is looked for as the answer
    may have encoded it too (JSON, PHP's "\\/", URL, HTML escapes): a parser would decode it."""
    content = response.content
    if not content or not secrets:
        return
    for form in _echoed_forms(tuple(secrets)):
        if form in content:
            content = content.replace(form, MASK.encode())
    response._content = content


@functools.lru_cache(maxsize=256)
def _echoed_forms(secrets):
    """Each secret as an answer could quote it, longest first (so a form is masked whole)."""
    forms = set()
    for secret in secrets:
        if len(secret) < 4:
            continue
        escaped = json.dumps(secret)[1:-1]
        for text in (secret, escaped, json.dumps(secret, ensure_ascii=False)[1:-1], escaped.replace("/", "\\/"),
                     quote(secret, safe=""), quote(secret), quote_plus(secret), html.escape(secret),
                     html.escape(secret, quote=False)):
            forms.add(text.encode())
            # Percent-encoding in lower case (%2f) reads the same.
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text).encode())
    return tuple(sorted(forms, key=len, reverse=True))


def _short(exc):
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def raise_for_response(response):
    """Map an HTTP error status (or a redirect, never followed) to the exception family, keeping
    the provider's message."""
    status = response.status_code
    if status < 300:
        return
    if status < 400:
        raise errors.ProviderProtocolError(
            f"The provider answered with a redirect (HTTP {status}); redirects are not followed.", status_code=status
        )
    message = _provider_message(response)
    kwargs = {"provider_message": message, "status_code": status, "sent": True}
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
    except (ValueError, RecursionError):  # a body nested past the parser's depth is no message either
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        for key in ("error", "message", "Message", "detail", "errors"):
            if data.get(key):
                return str(data[key])
    return f"HTTP {response.status_code}"
