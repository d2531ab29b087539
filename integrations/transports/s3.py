"""S3 and S3-compatible object storage (Cloudflare R2) through boto3, every call traced.

botocore announces each signed request before sending it (`before-send.s3.<Operation>`).
`instrument()` answers that event: it sends the request itself inside `Tracer.call()`, over a
`requests` session whose connections go only to checked addresses (`CheckedHTTPAdapter`, no redirect
followed), and hands botocore the answer, which it parses as usual. So every call of an instrumented
client is one log row ("s3.PutObject", ...): `S3Client`'s methods, `S3Client.client` used directly
and `TracedS3Storage` (django-storages). A log shows objects only by their size, never their
contents.

botocore's own retries are off: each attempt must be a call of its own (traced, checked, counted by
the breaker), and botocore would not retry our errors anyway. `S3Client` retries transient failures
itself, as `ProviderClient` does for idempotent calls: every S3 call it makes is idempotent per key
(a PutObject repeated writes the same bytes under the same key). The raw client and the storage
make one attempt per call.
"""

import functools
import random
import re
import threading
import time

import boto3
import requests
from boto3.s3.transfer import TransferConfig
from botocore import exceptions as boto_errors
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from django.utils.translation import gettext as _
from requests.structures import CaseInsensitiveDict
from storages.backends.s3 import S3Storage
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import ReadTimeoutError

from .. import errors
from ..http import CheckedHTTPAdapter, _never_sent
from ..models import Transport
from ..tracing import Tracer

AUTH_CODES = frozenset({"AccessDenied", "AccountProblem", "ExpiredToken", "InvalidAccessKeyId", "InvalidToken",
                        "SignatureDoesNotMatch", "Unauthorized"})
# Answers that speak of the service's availability (S3 asks to retry them), whatever their status.
UNAVAILABLE_CODES = frozenset({"InternalError", "RequestTimeout", "ServiceUnavailable", "SlowDown"})
READ_METHODS = frozenset({"GET", "HEAD"})
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,50})</Code>")


# --- the traced send -------------------------------------------------------------------------------
def instrument(client, tracer):
    """Make every call of a boto3 S3 client a traced call of `tracer`'s provider. Returns the client."""
    session = requests.Session()
    # What botocore signed is what goes out: no header of requests' own, no proxy from the environment.
    session.trust_env = False
    session.headers.clear()
    adapter = CheckedHTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    service = client.meta.service_model

    def send(request, event_name, **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        uploads_object = service.operation_model(operation).has_streaming_input
        return _send(tracer, session, request, operation, uploads_object)

    client.meta.events.register("before-send.s3", send, unique_id="eishro.traced-send")
    return client


def _send(tracer, session, request, operation, uploads_object):
    # Header values come as bytes; latin-1 gives back the same bytes on the wire. "Expect:
    # 100-continue" goes: requests sends the body at once (the header is not signed).
    headers = CaseInsensitiveDict({name: value.decode("latin-1") if isinstance(value, bytes) else value
                                   for name, value in request.headers.items() if name.lower() != "expect"})
    with tracer.call(f"s3.{operation}", endpoint=request.url, method=request.method) as call:
        if uploads_object or hasattr(request.body, "read"):
            call.request(f"[{headers.get('Content-Length', '?')} bytes]", content_type="text/plain", headers=headers)
        else:
            # No Content-Type on S3's own bodies: redaction reads them by their shape (XML, or a JSON policy).
            call.request(request.body, content_type=headers.get("Content-Type", ""), headers=headers)
        try:
            response = session.request(request.method, request.url, data=request.body, headers=headers,
                                       timeout=tracer.timeout, allow_redirects=False, stream=True)
            # Read as botocore's own send reads: the raw bytes (no content decoding).
            answer = AWSResponse(request.url, response.status_code, response.raw.headers, response.raw)
            status = answer.status_code
            if request.stream_output and status < 300:
                # An object's contents are streamed to the caller, who reads them after this call.
                body, content_type = f"[{answer.headers.get('Content-Length', '?')} bytes]", "text/plain"
            else:
                body, content_type = answer.content, answer.headers.get("Content-Type", "")
        except (requests.RequestException, URLLib3Error) as exc:
            error, code, timed_out = _failure(exc, request.method, tracer)
            raise call.fail(error, code=code, timed_out=timed_out) from exc
        code = "" if status < 300 else _error_code(answer.content) or f"http_{status}"
        call.response(body, status=status, content_type=content_type, headers=lambda: dict(answer.headers),
                      code=code, outage=is_outage(status, code))
    return answer


def _failure(exc, method, tracer):
    """The error, log code and timed-out flag of a request that got no answer."""
    values = {"name": tracer.integration.display_name, "timeout": tracer.timeout, "error": _short(exc)}
    if isinstance(exc, requests.RequestException) and _never_sent(exc):
        if isinstance(exc, requests.Timeout):
            message = _("Timed out after %(timeout)gs connecting to %(name)s.") % values
            return errors.ProviderUnavailable(message, sent=False), "timeout", True
        message = _("Could not reach %(name)s: %(error)s") % values
        return errors.ProviderUnavailable(message, sent=False), "connection", False
    # The request went out: a write may have been done, a read not.
    lost = errors.ProviderUnavailable if method in READ_METHODS else errors.UnknownOutcome
    if isinstance(exc, requests.Timeout | ReadTimeoutError):
        return lost(_("Timed out after %(timeout)gs talking to %(name)s.") % values, sent=True), "timeout", True
    return lost(_("The connection to %(name)s broke: %(error)s") % values), "connection", False


def _short(exc):
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def _error_code(body):
    match = _ERROR_CODE.search(body or b"")
    return match.group(1).decode("utf-8", errors="replace") if match else ""


def is_outage(status, code):
    """Whether an answer speaks of the service's availability (and counts towards the breaker): a
    missing key or a refusal is an answer, not an outage."""
    return status >= 500 or status == 429 or code in UNAVAILABLE_CODES


def provider_error(exc, tracer):
    """The `integrations.errors` exception for what a call of an instrumented client raised (the
    ProviderError of the traced send itself, botocore's ClientError once it parsed an error answer,
    or a BotoCoreError); None for anything else."""
    if isinstance(exc, errors.ProviderError):
        return exc
    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        kwargs = {"provider_message": tracer.redact(f"{code}: {error.get('Message') or status}"),
                  "status_code": status, "sent": True}
        if code in AUTH_CODES or status in (401, 403):
            return errors.ProviderAuthError(**kwargs)
        if status == 429:
            return errors.ProviderRateLimited(**kwargs)
        if is_outage(status, code):
            return errors.ProviderUnavailable(**kwargs)
        if 300 <= status < 400:
            return errors.ProviderProtocolError(
                _("The provider answered with a redirect (HTTP %(status)s); redirects are not followed.")
                % {"status": status}, **kwargs)
        return errors.ProviderValidationError(**kwargs)
    if isinstance(exc, boto_errors.ParamValidationError):
        # botocore refused our parameters before sending anything.
        return errors.ProviderValidationError(tracer.redact(str(exc)), sent=False)
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return errors.ProviderAuthError(sent=False)
    if isinstance(exc, boto_errors.ReadTimeoutError | boto_errors.ResponseStreamingError):
        # Reading an object's contents, after the traced call ended.
        return errors.ProviderUnavailable(tracer.redact(str(exc)), sent=True)
    if isinstance(exc, boto_errors.BotoCoreError):
        return errors.ProviderProtocolError(tracer.redact(str(exc)))
    return None


# --- the client of one provider row ---------------------------------------------------------------
def client_config(integration):
    """botocore's Config for a provider row: path-style addressing (what S3-compatible endpoints
    serve), region "auto" (R2's) unless configured, no retries of botocore's own (see the module's
    docstring), and checksums only where the API requires them (S3-compatible services do not all
    accept the flexible checksums that botocore adds by default)."""
    config = integration.configuration or {}
    return Config(
        region_name=config.get("region") or "auto",
        signature_version="s3v4",
        s3={"addressing_style": config.get("addressing_style") or "path"},
        retries={"mode": "standard", "total_max_attempts": 1},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _credentials(integration):
    creds = integration.credentials or {}
    key_id, secret = creds.get("access_key_id"), creds.get("secret_access_key")
    if not key_id or not secret:
        # Without both, boto3 would look for credentials of its own (environment, instance
        # metadata): the platform's, sent to the provider's endpoint.
        raise errors.ProviderAuthError(
            _("%(name)s has no access key id and secret access key.") % {"name": integration.display_name},
            sent=False)
    return key_id, secret, creds.get("session_token") or None


@functools.cache
def _boto_session():
    return boto3.session.Session()


_create_lock = threading.Lock()  # a boto3 session may not create clients in two threads at once


def new_client(integration):
    """A bare boto3 S3 client of the provider row (endpoint, region, credentials); not traced."""
    key_id, secret, token = _credentials(integration)
    config = client_config(integration)
    with _create_lock:
        return _boto_session().client("s3", endpoint_url=integration.base_url, region_name=config.region_name,
                                      aws_access_key_id=key_id, aws_secret_access_key=secret,
                                      aws_session_token=token, config=config)


class S3Client:
    """The bucket of one provider row (configuration: `bucket`, `region`, `retries`, `backoff`;
    credentials: `access_key_id`, `secret_access_key`, optional `session_token`). Its methods raise
    the `integrations.errors` family; `client` is the traced boto3 client for anything else (it
    raises botocore's errors: `provider_error()` maps them). Build it once and reuse it: a boto3
    client takes milliseconds to make."""

    def __init__(self, integration, *, bucket=None, retries=None, backoff=None):
        config = integration.configuration or {}
        self.integration = integration
        self.tracer = Tracer(integration, transport=Transport.S3)
        self.bucket = bucket or config.get("bucket", "")
        self.retries = int(retries if retries is not None else config.get("retries", 2))
        self.backoff = float(backoff if backoff is not None else config.get("backoff", 0.5))
        self.client = instrument(new_client(integration), self.tracer)

    def put(self, key, data, content_type="application/octet-stream", **params):
        """Store `data` (bytes or a seekable file) under `key`; returns botocore's answer."""
        start = data.tell() if hasattr(data, "seek") else None

        def put():
            if start is not None:
                data.seek(start)  # a retry sends the whole file again
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **params)

        return self._retrying(put)

    def get(self, key):
        """The contents of the object `key`, as bytes."""
        return self._retrying(lambda: self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def delete(self, key):
        """Delete the object `key` (deleting a missing key succeeds, as in S3)."""
        self._retrying(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def list(self, prefix=""):
        """The keys under `prefix`, every page of the listing."""
        keys, token = [], None
        while True:
            params = {"Bucket": self.bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = self._retrying(lambda params=params: self.client.list_objects_v2(**params))
            keys.extend(item["Key"] for item in page.get("Contents", ()))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return keys

    def presigned_url(self, key, expires=3600, method="get_object"):
        """A URL that lets its holder `method` the object `key` for `expires` seconds, without our
        credentials (it carries the access key id and a signature, not the secret)."""
        return self.client.generate_presigned_url(method, Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=expires)

    def _retrying(self, attempt):
        attempts = 1 + self.retries
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except (errors.ProviderError, boto_errors.BotoCoreError, boto_errors.ClientError) as exc:
                error = provider_error(exc, self.tracer)
                if number < attempts and error.transient and not isinstance(error, errors.CircuitOpen):
                    # Full jitter: spread the retries of many workers instead of synchronising them.
                    time.sleep(random.uniform(0, self.backoff * (2 ** (number - 1))))
                    continue
                if isinstance(error, errors.UnknownOutcome):
                    # Repeating the call is safe (idempotent per key): for the caller it is only unavailable.
                    error = errors.ProviderUnavailable(str(error), sent=error.sent)
                if error is exc:
                    raise
                raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover


class TracedS3Storage(S3Storage):
    """django-storages' S3 storage on the bucket of one provider row (as `S3Client`), every call of
    its boto3 client traced. Extra keyword arguments are django-storages' settings."""

    def __init__(self, integration, **settings):
        key_id, secret, token = _credentials(integration)
        config = client_config(integration)
        self.integration = integration
        self.tracer = Tracer(integration, transport=Transport.S3)
        defaults = {
            "bucket_name": (integration.configuration or {}).get("bucket"),
            "endpoint_url": integration.base_url,
            "region_name": config.region_name,
            "access_key": key_id,
            "secret_key": secret,
            "security_token": token,
            "client_config": config,
            # Transfers in the calling thread: s3transfer would run each request in a worker thread
            # of its own, whose log row would need a database connection of its own.
            "transfer_config": TransferConfig(use_threads=False),
        }
        super().__init__(**{**defaults, **settings})

    @property
    def connection(self):
        connection = getattr(self._connections, "connection", None)
        if connection is None:  # a new boto3 resource, one per thread
            connection = super().connection
            instrument(connection.meta.client, self.tracer)
        return connection
