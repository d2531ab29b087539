"""FTP and FTPS to providers: `FtpClient`, the FTP transport of the traced call (`tracing.py`).

One control connection serves several operations (use the client as a context manager); the login
and each operation are traced calls: "ftp.connect", "ftp.list", "ftp.retrieve", "ftp.store",
"ftp.delete", "ftp.rename". The row's `base_url` says where: `ftp://host[:port]/dir` or `ftps://…`
for explicit TLS (AUTH TLS, then a protected data channel); `username` and `password` come from its
credentials.

The destination is checked when connecting (`integrations.addresses`) and the checked address is
the one connected to. Data connections go to that same address: passive mode ignores the address in
the server's PASV answer (ftplib's default, kept on purpose), so a server cannot send us elsewhere.

A reply is an answer, not an outage: a 5xx (550 no such file) is a refusal, a 530 a refusal of our
credentials; a 4xx says "try later" and counts towards the breaker, as do timeouts and refused
connections. A connection left in an unknown state (timeout, broken transfer) is dropped, and the
next operation opens a new one.
"""

import ftplib
import io
import posixpath
import ssl
import sys
from urllib.parse import unquote, urlsplit

from django.utils.translation import gettext as _

from .. import addresses, errors
from ..models import Transport
from ..tracing import Tracer

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Files logged as text (redacted by their type, truncated by the tracer); others by their size.
TEXT_TYPES = {".csv": "text/csv", ".json": "application/json", ".xml": "application/xml", ".txt": "text/plain"}
# Replies saying SIZE is not understood: the download is then measured as it arrives.
_NO_SIZE = frozenset({"500", "501", "502", "504"})


class _CheckedConnect:
    """ftplib's `connect`, to an address checked by `integrations.addresses` instead of the name.
    `host` keeps the name: FTPS checks the server's certificate against it."""

    def connect(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        sys.audit("ftplib.connect", self, self.host, self.port)
        self.sock = addresses.connect(host, port, timeout)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class _FTP(_CheckedConnect, ftplib.FTP):
    pass


class _FTPS(_CheckedConnect, ftplib.FTP_TLS):
    pass


class _TooLarge(Exception):
    pass


class FtpClient:
    """FTP(S) operations on one provider row's server. Not shared between threads.

    `max_bytes` (else the row's configuration `max_file_bytes`, else 20 MB) bounds a retrieved file;
    `ssl_context` verifies an FTPS server (default: the system's trusted certificates)."""

    def __init__(self, integration, *, timeout=None, max_bytes=None, ssl_context=None):
        self.integration = integration
        self.tracer = Tracer(integration, transport=Transport.FTP)
        config = integration.configuration or {}
        self.timeout = float(timeout or self.tracer.timeout)
        self.max_bytes = int(max_bytes or config.get("max_file_bytes") or DEFAULT_MAX_BYTES)
        url = urlsplit(integration.base_url)
        self.scheme = url.scheme.lower()
        if self.scheme not in ("ftp", "ftps"):
            raise ValueError(f"FtpClient needs an ftp:// or ftps:// base URL, not {integration.base_url!r}")
        self.host, self.port = url.hostname, url.port or 21
        self.directory = unquote(url.path) or "/"
        credentials = integration.credentials or {}
        self._username = credentials.get("username") or "anonymous"
        self._password = credentials.get("password") or ""
        if self._password:
            # Whatever the adapter declares, the login password is a secret of every log row.
            self.tracer.secrets = (*self.tracer.secrets, self._password)
        self.ssl_context = ssl_context
        self._ftp = None

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the connection ---------------------------------------------------------------------------
    def connect(self):
        """Connect and log in (a traced "ftp.connect"), unless connected already."""
        if self._ftp is not None:
            return
        if self.scheme == "ftps":
            ftp = _FTPS(context=self.ssl_context or ssl.create_default_context(), timeout=self.timeout)
        else:
            ftp = _FTP(timeout=self.timeout)
        with self.tracer.call("ftp.connect", endpoint=self._url(""), method="USER") as call:
            call.request(f"USER {self._username}", content_type="text/plain")
            try:
                welcome = ftp.connect(self.host, self.port, self.timeout)
                reply = ftp.login(self._username, self._password)
                if self.scheme == "ftps":
                    ftp.prot_p()
                if self.directory != "/":
                    ftp.cwd(self.directory)
            except errors.ProviderError as exc:  # refused destination, unresolved name
                ftp.close()
                raise call.fail(exc, code="forbidden" if isinstance(exc, errors.ForbiddenDestination)
                                else "connection") from exc
            except (*ftplib.all_errors,) as exc:
                ftp.close()
                raise self._fail(call, exc, connecting=True) from exc
            call.response(f"{welcome}\n{reply}", status=_status(reply), content_type="text/plain")
        self._ftp = ftp

    def close(self):
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            ftp.quit()
        except ftplib.all_errors:
            pass  # leaving anyway
        finally:
            ftp.close()

    # --- operations -------------------------------------------------------------------------------
    def list(self, path=""):
        """Names in a directory (NLST); the listing is logged as text."""
        def run(ftp, call):
            names = ftp.nlst(*([path] if path else []))
            call.response("\n".join(names), status=_status(ftp.lastresp), content_type="text/plain")
            return names

        return self._run("ftp.list", "NLST", path, run)

    def retrieve(self, path):
        """A file's content; a file bigger than `max_bytes` is refused (before or while it comes)."""
        def run(ftp, call):
            ftp.voidcmd("TYPE I")
            size = self._size(ftp, path)
            if size is not None and size > self.max_bytes:
                raise call.fail(self._too_large(path, size), code="too_large")
            chunks, received = [], 0

            def keep(chunk):
                nonlocal received
                received += len(chunk)
                if received > self.max_bytes:
                    raise _TooLarge
                chunks.append(chunk)

            try:
                reply = ftp.retrbinary(f"RETR {path}", keep)
            except _TooLarge:
                self._drop()  # the transfer was cut short: what the server says next is unknown
                raise call.fail(self._too_large(path, None), code="too_large") from None
            data = b"".join(chunks)
            call.response(lambda: _loggable(path, data), status=_status(reply), content_type=_content_type(path))
            return data

        return self._run("ftp.retrieve", "RETR", path, run)

    def store(self, path, data):
        """Write a file (bytes, or text sent as UTF-8)."""
        data = data.encode() if isinstance(data, str) else bytes(data)

        def run(ftp, call):
            call.request(lambda: _loggable(path, data), content_type=_content_type(path))
            reply = ftp.storbinary(f"STOR {path}", io.BytesIO(data))
            call.response(reply, status=_status(reply), content_type="text/plain")

        self._run("ftp.store", "STOR", path, run, write=True)

    def delete(self, path):
        def run(ftp, call):
            reply = ftp.delete(path)
            call.response(reply, status=_status(reply), content_type="text/plain")

        self._run("ftp.delete", "DELE", path, run, write=True)

    def rename(self, source, target):
        def run(ftp, call):
            call.request(f"RNFR {source}\nRNTO {target}", content_type="text/plain")
            reply = ftp.rename(source, target)
            call.response(reply, status=_status(reply), content_type="text/plain")

        self._run("ftp.rename", "RNFR", source, run, write=True)

    # --- the traced call and its faults -----------------------------------------------------------
    def _run(self, operation, command, path, work, *, write=False):
        self.connect()
        ftp = self._ftp
        with self.tracer.call(operation, endpoint=self._url(path), method=command) as call:
            try:
                return work(ftp, call)
            except (*ftplib.all_errors,) as exc:
                if not _answered(exc):
                    self._drop()
                raise self._fail(call, exc, write=write) from exc

    def _fail(self, call, exc, *, write=False, connecting=False):
        """The `integrations.errors` exception for an ftplib fault, noted on the call. `sent` speaks
        of the operation asked for: nothing of it has left while we are still connecting."""
        name = self.integration.display_name
        sent = False if connecting else None
        if isinstance(exc, ftplib.error_perm | ftplib.error_temp):
            reply = str(exc)
            code = reply[:3]
            call.response(reply, status=_status(reply), content_type="text/plain")
            kwargs = {"provider_message": self.tracer.redact(reply), "status_code": _status(reply),
                      "sent": False if connecting else True}
            if isinstance(exc, ftplib.error_temp):
                error = errors.ProviderUnavailable(**kwargs)
            elif code == "530":
                error = errors.ProviderAuthError(**kwargs)
            else:
                error = errors.ProviderValidationError(**kwargs)
            return call.fail(error, code=f"ftp_{code}")
        if isinstance(exc, ftplib.error_reply | ftplib.error_proto | EOFError):
            return call.fail(errors.ProviderProtocolError(
                _("%(provider)s answered something unexpected over FTP: %(reply)s")
                % {"provider": name, "reply": self.tracer.redact(str(exc)) or _("the connection was closed")},
                sent=sent), code="protocol")
        seconds = f"{self.timeout:g}"
        if isinstance(exc, TimeoutError):
            if connecting:
                message = _("Timed out after %(seconds)ss connecting to %(provider)s.")
                error = errors.ProviderUnavailable(message % {"seconds": seconds, "provider": name}, sent=False)
            elif write:
                # The command went out: the server may have done it.
                message = _("Timed out after %(seconds)ss talking to %(provider)s.")
                error = errors.UnknownOutcome(message % {"seconds": seconds, "provider": name})
            else:
                message = _("Timed out after %(seconds)ss talking to %(provider)s.")
                error = errors.ProviderUnavailable(message % {"seconds": seconds, "provider": name})
            return call.fail(error, code="timeout", timed_out=True)
        detail = self.tracer.redact(_short(exc))
        if isinstance(exc, ssl.SSLError) and connecting:  # certificate refused, or no TLS spoken
            message = _("The TLS connection to %(provider)s failed: %(error)s")
            return call.fail(errors.ProviderUnavailable(message % {"provider": name, "error": detail}, sent=False),
                             code="tls")
        if connecting:
            message = _("Could not reach %(provider)s: %(error)s")
            return call.fail(errors.ProviderUnavailable(message % {"provider": name, "error": detail}, sent=False),
                             code="connection")
        message = _("The connection to %(provider)s broke: %(error)s")
        kind = errors.UnknownOutcome if write else errors.ProviderUnavailable
        return call.fail(kind(message % {"provider": name, "error": detail}), code="connection")

    def _size(self, ftp, path):
        try:
            return ftp.size(path)
        except ftplib.error_perm as exc:
            if str(exc)[:3] in _NO_SIZE:
                return None
            raise

    def _too_large(self, path, size):
        if size is None:
            message = _("The file %(path)s is larger than the limit of %(limit)s bytes; it was not downloaded.")
        else:
            message = _("The file %(path)s is %(size)s bytes, more than the limit of %(limit)s bytes; "
                        "it was not downloaded.")
        return errors.ProviderValidationError(message % {"path": path, "size": size, "limit": self.max_bytes},
                                              sent=True)

    def _drop(self):
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            ftp.close()

    def _url(self, path):
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{posixpath.join(self.directory, path)}"


def _answered(exc):
    """Whether the server answered with a reply that leaves the connection usable."""
    return isinstance(exc, ftplib.error_perm) or (isinstance(exc, ftplib.error_temp) and not str(exc).startswith("421"))


def _status(reply):
    code = (reply or "")[:3]
    return int(code) if code.isdigit() else None


def _content_type(path):
    return TEXT_TYPES.get(posixpath.splitext(path)[1].lower(), "application/octet-stream")


def _loggable(path, data):
    if posixpath.splitext(path)[1].lower() in TEXT_TYPES:
        return data.decode("utf-8", errors="replace")
    return f"[{len(data)} bytes]"


def _short(exc):
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"
