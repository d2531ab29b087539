"""Secrets never reach a log line or a stored request/response.

Three layers: by name (headers, form fields, JSON keys, XML elements and attributes, multipart
fields and query parameters whose name is a declared credential or looks like a secret), by value
(the provider's own secret credentials, wherever they appear), and by shape (card numbers that pass
the Luhn check, bearer tokens). Bodies are read by their content type (`redact_body`): JSON, form,
XML/SOAP (and HTML), multipart and plain text.
"""

import functools
import json
import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "[REDACTED]"

SECRET_NAMES = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "secret",
        "api_secret",
        "client_secret",
        "secret_key",
        "securekey",
        "secure_key",
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "x-auth-token",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "card_number",
        "cardnumber",
        "card_no",
        "cardno",
        "pan",
        "cvv",
        "cvc",
        "cvv2",
        "pin",
        "otp",
        "webhook_secret",
        "notification_key",
        "aws_secret_access_key",
        "secret_access_key",
        "private_key",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-credential",
    }
)
# A name that, without separators, ends like one of these is a secret whatever its prefix
# (`wsse:Password`, `MerchantPassword`, `UserPin`, `sessionToken`, `clientSecret`). Each holds one of
# _FRAGMENTS, which the JSON quick check relies on.
SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "secretkey", "securekey", "privatekey",
                   "accesskey", "pin", "otp", "cvv", "cvc", "cvv2", "cardnumber", "cardno", "pan")
_SEPARATORS = str.maketrans("", "", "-_. ")

_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}")
_KV = re.compile(
    r"(?i)(?P<k>\b(?:" + "|".join(sorted((re.escape(n) for n in SECRET_NAMES), key=len, reverse=True)) + r"))"
    r"(?P<sep>\"?\s*[:=]\s*\"?)(?P<v>[^\s&\"',;}]+)"
)
_DIGITS = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_NON_DIGIT = re.compile(r"\D")


# Every name of SECRET_NAMES contains one of these fragments; with "bearer" and "basic" they also
# cover every match of _BEARER and _KV. A JSON text (lower-cased) with none of them needs no
# redaction by name or by pattern (see _json_needs_redaction).
_FRAGMENTS = ("key", "secret", "pass", "pwd", "token", "auth", "cookie", "card", "pan", "cv", "pin", "otp",
              "amz", "bearer", "basic")
# The only non-ASCII characters that a case-insensitive pattern matches to an ASCII letter.
_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
# At least 13 digits with single spaces or dashes between them start like this (cheap to search).
_CARD_START = re.compile(r"\d[\d -]{11}")
# ASCII text: digits, spaces and dashes all become "0", so that a C-speed substring search rules
# out _CARD_START (which costs a regex attempt at every digit of a long answer full of numbers).
_CARD_CHARS = bytes.maketrans(b"0123456789 -", b"0" * 12)


def _may_hold_card(text):
    if text.isascii() and b"0" * 12 not in text.encode().translate(_CARD_CHARS):
        return False
    return _CARD_START.search(text) is not None


@functools.lru_cache(maxsize=256)
def _secret_list(secrets):
    return tuple(sorted({str(s) for s in secrets if s and len(str(s)) >= 4}, key=len, reverse=True))


def _luhn_ok(digits):
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match):
    digits = _NON_DIGIT.sub("", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"
    return match.group(0)


@functools.lru_cache(maxsize=4096)
def _looks_secret(lowered):
    return lowered in SECRET_NAMES or lowered.translate(_SEPARATORS).endswith(SECRET_SUFFIXES)


def is_secret_name(name, extra=()):
    lowered = str(name).lower()
    return _looks_secret(lowered) or lowered in extra


def redact_text(text, secrets=()):
    """Redact secret values, key=value pairs, bearer tokens and card numbers in free text."""
    if not text:
        return text
    for value in _secret_list(_hashable(secrets)):
        if value in text:
            text = text.replace(value, MASK)
    # Cheap checks first: each pattern needs a fragment of its names (or a run of digits) to match.
    folded = _fold(text)
    if "token" in folded or "bearer" in folded or "basic" in folded:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if any(fragment in folded for fragment in _FRAGMENTS):
        if "<" in text:  # markup in free text (a log line quoting an envelope)
            text = _mask_markup(text, ())
        text = _KV.sub(lambda m: f"{m.group('k')}{m.group('sep')}{MASK}", text)
    if not _may_hold_card(text):
        return text
    return _DIGITS.sub(_mask_card, text)


def _fold(text):
    """Lower-cased, with the non-ASCII letters that case-insensitive patterns treat as ASCII folded."""
    return (text if text.isascii() else text.translate(_FOLD)).lower()


def _hashable(values):
    return values if isinstance(values, (tuple, frozenset)) else tuple(values or ())


def _json_needs_redaction(text, secrets, extra_names):
    """False only when redacting the parsed JSON `text` provably changes nothing, so that the walk
    over every key and string can be skipped. Conservative: any backslash (a string could hide a
    secret behind escapes), any fragment of a secret name or of a token scheme, any provider secret
    value and any Luhn-valid card number in the raw text mean "redact it". Without escapes every
    key and string of the document appears verbatim between quotes in the raw text, and quotes are
    boundaries for all these patterns, so a match inside a string is a match in the raw text."""
    if "\\" in text:
        return True
    folded = _fold(text)
    if any(fragment in folded for fragment in _FRAGMENTS):
        return True
    if any(str(name).lower() in folded for name in extra_names):
        return True
    if any(value in text for value in _secret_list(_hashable(secrets))):
        return True
    if not _may_hold_card(text):
        return False
    return any(_mask_card(m) != m.group(0) for m in _DIGITS.finditer(text))


def redact_mapping(data, secrets=(), extra_names=()):
    if isinstance(data, dict):
        return {
            k: MASK
            if is_secret_name(k, extra_names) and v not in (None, "")
            else redact_mapping(v, secrets, extra_names)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(v, secrets, extra_names) for v in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data


def redact_headers(headers, secrets=()):
    out = {}
    for name, value in (headers or {}).items():
        if is_secret_name(name):
            scheme = str(value).split(" ", 1)[0] if " " in str(value) else ""
            out[name] = f"{scheme} {MASK}".strip() if name.lower() == "authorization" else MASK
        else:
            out[name] = redact_text(str(value), secrets)
    return out


def redact_url(url, secrets=(), extra_names=()):
    parts = urlsplit(url)
    if not parts.query:
        return redact_text(url, secrets)
    query = [
        (k, MASK if is_secret_name(k, extra_names) else redact_text(v, secrets))
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))


def redact_form(fields, secrets=(), extra_names=()):
    """A form body given as requests takes it (a mapping or pairs, a value may be a list), redacted
    and encoded in one pass, instead of encoding it, parsing it back and encoding it again."""
    pairs = []
    for name, value in fields.items() if isinstance(fields, dict) else fields:
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if item is None:  # requests leaves these out of the body
                continue
            item = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
            pairs.append((name, MASK if is_secret_name(name, extra_names) else redact_text(item, secrets)))
    return urlencode(pairs, safe="[]")


# --- markup (XML, SOAP, HTML) ---------------------------------------------------------------------
# A leaf element: its text (or CDATA) holds no markup. Secrets are leaves; a regex rather than a
# parser, because a log must be redacted even when the markup is broken, and parsing what a
# provider sent is an attack surface of its own (entities).
_ELEMENT = re.compile(
    r"<(?P<tag>(?:[\w.-]+:)?(?P<name>[\w.-]+))(?P<attrs>\s[^<>]*?)?(?<!/)>"
    # A CDATA section ends at its first "]]>" and is not searched past the next "<![CDATA[": else
    # every start tag before a long unclosed (or far-closed) section would scan to its end
    # (quadratic time on "<a><![CDATA[" repeated).
    # A comment inside the text ("hun<!-- -->ter2") does not make it less of a leaf.
    r"(?P<text>(?:<!\[CDATA\[(?:(?!\]\]>|<!\[CDATA\[).)*+\]\]>|<!--(?:(?!-->|<!--).)*+-->|[^<])*+)"
    r"</(?P=tag)\s*>",
    re.S,
)
_START_TAG = re.compile(r"<(?P<tag>[\w.:-]+)(?P<attrs>\s[^<>]*?)(?P<end>/?)>", re.S)
# A name starts where a name can start (not inside another one) and its characters are taken
# possessively: else a 100 KB word in a tag costs a scan from every one of its characters (minutes).
_ATTRIBUTE = re.compile(
    r"(?<![\w.:-])(?P<name>(?:[\w.-]++:)?+(?P<local>[\w.-]++))(?P<eq>\s*+=\s*+)(?P<q>[\"'])(?P<value>.*?)(?P=q)",
    re.S,
)


_NAMED = re.compile(r"""(?i)(?<![\w.:-])name\s*+=\s*+(?P<q>["'])(?P<name>[^"'<>]*)(?P=q)""")


def _mask_attributes(attrs, extra_names):
    # An HTML form field quoted back (<input name="password" value="...">): its value is the secret.
    named = _NAMED.search(attrs)
    secret_value = named is not None and is_secret_name(named.group("name"), extra_names)

    def attribute(m):
        local = m.group("local")
        if (is_secret_name(local, extra_names) or (secret_value and local.lower() == "value")) and m.group("value"):
            return f"{m.group('name')}{m.group('eq')}{m.group('q')}{MASK}{m.group('q')}"
        return m.group(0)

    return _ATTRIBUTE.sub(attribute, attrs)


def _mask_elements(text, extra_names):
    def element(m):
        if not is_secret_name(m.group("name"), extra_names) or not m.group("text").strip():
            return m.group(0)
        return f"<{m.group('tag')}{m.group('attrs') or ''}>{MASK}</{m.group('tag')}>"

    return _ELEMENT.sub(element, text)


def _mask_markup(text, extra_names):
    text = _mask_elements(text, extra_names)
    return _START_TAG.sub(
        lambda m: f"<{m.group('tag')}{_mask_attributes(m.group('attrs'), extra_names)}{m.group('end')}>", text
    )


def redact_markup(text, secrets=(), extra_names=()):
    """XML, SOAP or HTML: elements and attributes whose names say secret are masked, then secret
    values, tokens and card numbers anywhere (text, attributes, comments)."""
    return redact_text(_mask_markup(text, extra_names), secrets)


# --- multipart -------------------------------------------------------------------------------------
_BOUNDARY = re.compile(r'boundary="?(?P<b>[^";]+)"?', re.I)
_PART_NAME = re.compile(r'\bname="(?P<name>[^"]*)"', re.I)
_PART_FILE = re.compile(r'\bfilename="(?P<name>[^"]*)"', re.I)


def redact_multipart(body, content_type, secrets=(), extra_names=()):
    """multipart/form-data: a field whose name says secret is masked, files are replaced by their
    name and size (a log is no file store), other fields are redacted as text."""
    match = _BOUNDARY.search(content_type or "")
    if not match:
        return redact_text(body, secrets)
    delimiter = "--" + match.group("b")
    parts = body.split(delimiter)
    out = [parts[0]]
    for part in parts[1:]:
        head, sep, value = part.partition("\r\n\r\n")
        if not sep:
            head, sep, value = part.partition("\n\n")
        if not sep:  # the closing "--" or a fragment
            out.append(redact_text(part, secrets))
            continue
        name, filename = _PART_NAME.search(head), _PART_FILE.search(head)
        trailer = "\r\n" if value.endswith("\r\n") else ""
        value = value[: len(value) - len(trailer)]
        if filename:
            value = f"[file {filename.group('name')!r}, {len(value.encode())} bytes]"
        elif name and is_secret_name(name.group("name"), extra_names) and value:
            value = MASK
        else:
            value = redact_text(value, secrets)
        out.append(f"{redact_text(head, secrets)}{sep}{value}{trailer}")
    return delimiter.join(out)


def body_kind(content_type):
    """What a Content-Type says a body is: json, form, markup, multipart, text or "" (unknown)."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if not ct:
        return ""
    if ct.endswith(("/json", "+json")) or ct == "application/problem+json":
        return "json"
    if ct == "application/x-www-form-urlencoded":
        return "form"
    if ct.endswith(("/xml", "+xml", "/html", "/xhtml")):
        return "markup"
    if ct.startswith("multipart/"):
        return "multipart"
    return "text"


def redact_body(body, content_type="", secrets=(), extra_names=()):
    """Redact a request or response body, read as its content type says (JSON, form, XML/SOAP/HTML,
    multipart, text) or, when it says nothing useful, as the body looks."""
    if body is None:
        return None
    kind = body_kind(content_type)
    if isinstance(body, (dict, list, tuple)):
        if kind == "form":
            return redact_form(body, secrets, extra_names)
        return json.dumps(redact_mapping(body, secrets, extra_names), ensure_ascii=False)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if kind == "multipart":
        return redact_multipart(body, content_type, secrets, extra_names)
    stripped = body.strip()
    if kind == "markup" or (stripped[:1] == "<" and kind != "json"):
        return redact_markup(body, secrets, extra_names)
    # Panels answer JSON under any content type (text/html, text/plain): its shape decides.
    if stripped[:1] in "{[":
        needs_redaction = _json_needs_redaction(stripped, secrets, extra_names)
        # Nothing to mask, JSON or not (a "%" could hide a secret name in a form body): the text as
        # the provider wrote it, without parsing it.
        if not needs_redaction and "%" not in stripped:
            return stripped
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            if not needs_redaction:
                return stripped  # nothing to mask: the document as the provider wrote it
            return json.dumps(redact_mapping(parsed, secrets, extra_names), ensure_ascii=False)
    if kind == "form" or (kind == "" and "=" in stripped and " " not in stripped and "<" not in stripped):
        pairs = parse_qsl(stripped, keep_blank_values=True)
        if pairs:
            return urlencode(
                [(k, MASK if is_secret_name(k, extra_names) else redact_text(v, secrets)) for k, v in pairs],
                safe="[]",
            )
    return redact_text(body, secrets)


class RedactingFilter(logging.Filter):
    """Applied to every log handler: a secret that slipped into a message is masked on the way out."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        # A traceback quotes exception messages (a requests error names the URL with its query, a
        # chained provider error its answer): formatted once here, redacted, and kept where every
        # Formatter looks for it before formatting the exception itself.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_TRACEBACK_FORMATTER = logging.Formatter()
