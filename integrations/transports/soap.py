"""SOAP to providers: `SoapClient`, zeep riding the traced HTTP session of `integrations.http`.

Each SOAP operation is one traced HTTP call (`ProviderClient.request`), logged with the transport
"soap", the operation's name and the envelope as XML (so redacted element by element). Loading a
WSDL from a URL is a traced call too (operation "wsdl"); a shipped WSDL is read from disk. The
parsed WSDL is kept per provider and location for the life of the process.

A SOAP fault is the provider's answer, not an outage: it arrives as an HTTP 500 and must not open
the circuit breaker, while a 502/503, or a 500 that is not a fault (a proxy's error page), does.
Writes are never retried; an operation named in `safe` is read-only and may be.
"""

import logging
import os
import re
import threading
from urllib.parse import urlsplit

from django.utils.translation import gettext as _
from lxml import etree
from zeep import Client, Settings
from zeep import exceptions as zeep_errors
from zeep.helpers import serialize_object
from zeep.proxy import ServiceProxy
from zeep.transports import Transport as ZeepTransport
from zeep.wsdl import Document

from .. import errors
from ..http import ProviderClient, raise_for_response
from ..models import Transport
from ..redaction import redact_body

log = logging.getLogger(__name__)

# A fault element in the answer: how a fault is told from a server's error page.
_FAULT = re.compile(rb"<(?:[\w.-]+:)?Fault[\s>/]")
# Fault codes and strings that say the provider refused who we are, not what we asked.
_AUTH_FAULT = re.compile(
    r"(?i)auth|credential|password|log-?in\b|unauthori[sz]ed|forbidden|access.?denied|permission|not allowed"
)
# DTDs refused: a provider's answer has no business declaring entities.
SETTINGS = Settings(strict=True, forbid_dtd=True, forbid_entities=True)

_documents = {}  # (provider pk, WSDL location) -> parsed zeep Document
_documents_lock = threading.Lock()


def has_fault(response):
    return _FAULT.search(response.content or b"") is not None


def is_fault(response):
    """Whether an HTTP answer is a SOAP fault (500 with a Fault in the body)."""
    return response.status_code == 500 and has_fault(response)


def soap_outage(response):
    """Whether an answer counts towards the breaker: a 5xx or 429, except a SOAP fault."""
    if response.status_code == 429:
        return True
    return response.status_code >= 500 and not is_fault(response)


class TracedTransport(ZeepTransport):
    """zeep's transport over a `ProviderClient`: every POST and every remote WSDL or schema a traced
    call. Local files are read only beside the shipped WSDL: a provider's WSDL must not make us
    read our own disk."""

    def __init__(self, http, *, local_root=None):
        # Not zeep's __init__: it would mount a file:// adapter on the provider's shared session and
        # replace its User-Agent.
        self.http = http
        self.cache = None
        self.load_timeout = self.operation_timeout = http.timeout
        self.logger = log
        self._close_session = False
        self.session = http.session
        self.local_root = local_root
        self.current = threading.local()  # the operation under way in this thread and its answer

    def post(self, address, message, headers):
        operation = getattr(self.current, "operation", "") or "soap"
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "text/xml; charset=utf-8")
        if log.isEnabledFor(logging.DEBUG):
            tracer = self.http.tracer
            log.debug("SOAP %s to %s:\n%s", operation, address,
                      redact_body(message, content_type, tracer.secrets, tracer.secret_names))
        response = self.http.request(
            "POST", address, operation=operation, data=message, headers=headers,
            idempotent=getattr(self.current, "safe", False), raise_for_status=False, outage=soap_outage,
        )
        self.current.response = response
        return response

    def get(self, address, params, headers):
        return self.http.request("GET", address, operation=getattr(self.current, "operation", "") or "soap",
                                 params=params, headers=headers, raise_for_status=False, outage=soap_outage)

    def load(self, url):
        if not url:
            raise ValueError("No url given to load")
        if urlsplit(url).scheme in ("http", "https"):
            return self.http.request("GET", url, operation="wsdl").content
        path = os.path.realpath(url)
        if self.local_root and os.path.commonpath([path, self.local_root]) == self.local_root:
            with open(path, "rb") as fh:
                return fh.read()
        raise errors.ProviderProtocolError(
            _("The WSDL refers to %(location)s, which may not be read.") % {"location": url}
        )


def _document(integration, wsdl, transport):
    key = (integration.pk, wsdl)
    document = _documents.get(key)
    if document is None:
        document = Document(wsdl, transport, settings=SETTINGS)
        with _documents_lock:
            document = _documents.setdefault(key, document)
    return document


class SoapClient:
    """SOAP operations of one provider row, described by `wsdl` (a shipped file's path or a URL).

    Calls go to the row's `base_url` (else the WSDL's own address), on the WSDL's first service and
    port unless `service`/`port` name others. `safe` names the read-only operations, which may be
    retried. `zeep` is the zeep client, for its type factories; call operations with `call()`."""

    def __init__(self, integration, wsdl, *, service=None, port=None, safe=()):
        self.integration = integration
        self.http = ProviderClient(integration, transport=Transport.SOAP)
        self.tracer = self.http.tracer
        self.safe = frozenset(safe)
        wsdl = os.fspath(wsdl)
        remote = urlsplit(wsdl).scheme in ("http", "https")
        if not remote:
            wsdl = os.path.realpath(wsdl)
        self.transport = TracedTransport(self.http, local_root=None if remote else os.path.dirname(wsdl))
        try:
            document = _document(integration, wsdl, self.transport)
        except (zeep_errors.Error, etree.XMLSyntaxError) as exc:
            raise errors.ProviderProtocolError(
                _("The WSDL %(location)s could not be read: %(error)s")
                % {"location": wsdl, "error": self.tracer.redact(_short(exc))}
            ) from exc
        self.zeep = Client(document, transport=self.transport, settings=SETTINGS)
        wsdl_port = _port(document, service, port)
        self.address = integration.base_url or wsdl_port.binding_options.get("address")
        self._service = ServiceProxy(self.zeep, wsdl_port.binding, **{**wsdl_port.binding_options,
                                                                    "address": self.address})

    def call(self, operation, **params):
        """Call one operation; returns its result as plain Python (dicts, lists, values)."""
        method = self._service[operation]  # AttributeError for an operation the WSDL does not have
        current = self.transport.current
        current.operation, current.safe, current.response = operation, operation in self.safe, None
        try:
            result = method(**params)
        # A fault's or an unreadable answer's text is the provider's, and may quote what we sent (a
        # card number): not chained, so that a logged traceback does not print it unredacted.
        except zeep_errors.Fault as exc:
            raise self._fault(exc, current.response) from None
        except zeep_errors.TransportError as exc:
            raise self._unreadable(exc, current.response) from None
        except zeep_errors.ValidationError as exc:
            raise errors.ProviderValidationError(
                _("The request does not match the service's WSDL: %(error)s") % {"error": self.tracer.redact(str(exc))},
                sent=False,
            ) from exc
        except (zeep_errors.Error, etree.XMLSyntaxError) as exc:
            raise self._unreadable(exc, current.response) from exc
        finally:
            current.operation, current.response = "", None
        return serialize_object(result, dict)

    def _fault(self, fault, response):
        if response is not None and (soap_outage(response) or not has_fault(response)):
            # zeep reads any XML error answer as a fault; one without a Fault element, or a fault
            # sent with a 502/503, is the server's failure, as the breaker counted it.
            return self._unreadable(fault, response)
        message = self.tracer.redact(fault.message or "") or _("SOAP fault without a message")
        said = f"{fault.code or ''} {' '.join(str(c) for c in fault.subcodes or ())} {fault.message or ''}"
        kind = errors.ProviderAuthError if _AUTH_FAULT.search(said) else errors.ProviderValidationError
        return kind(provider_message=message, status_code=getattr(response, "status_code", None), sent=True)

    def _unreadable(self, exc, response):
        if response is not None:
            try:
                raise_for_response(response)
            except errors.ProviderError as mapped:
                return mapped
        return errors.ProviderProtocolError(
            _("%(provider)s sent a SOAP answer we could not read: %(error)s")
            % {"provider": self.integration.display_name, "error": self.tracer.redact(_short(exc))},
            status_code=getattr(response, "status_code", None), sent=response is not None,
        )


def _port(document, service, port):
    services = document.services
    if not services:
        raise errors.ProviderProtocolError(_("The WSDL defines no service."))
    wsdl_service = services[service] if service else next(iter(services.values()))
    return wsdl_service.ports[port] if port else next(iter(wsdl_service.ports.values()))


def _short(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
