"""Secrets never reach a log line or a stored request/response.

Three layers: by name (headers, form fields, JSON keys, query parameters whose name says secret),
by value (the provider's own secret credentials, wherever they appear), and by shape (card numbers
that pass the Luhn check, bearer tokens).
"""

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
    }
)

_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}")
_KV = re.compile(
    r"(?i)(?P<k>\b(?:" + "|".join(sorted((re.escape(n) for n in SECRET_NAMES), key=len, reverse=True)) + r"))"
    r"(?P<sep>\"?\s*[:=]\s*\"?)(?P<v>[^\s&\"',;}]+)"
)
_DIGITS = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn_ok(digits):
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match):
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"
    return match.group(0)


def is_secret_name(name, extra=()):
    lowered = str(name).lower()
    return lowered in SECRET_NAMES or lowered in extra


def redact_text(text, secrets=()):
    """Redact secret values, key=value pairs, bearer tokens and card numbers in free text."""
    if not text:
        return text
    for value in sorted({s for s in secrets if s and len(str(s)) >= 4}, key=len, reverse=True):
        text = text.replace(str(value), MASK)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KV.sub(lambda m: f"{m.group('k')}{m.group('sep')}{MASK}", text)
    return _DIGITS.sub(_mask_card, text)


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


def redact_body(body, content_type="", secrets=(), extra_names=()):
    """Redact a request or response body of any of the shapes providers use."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, (dict, list)):
        return json.dumps(redact_mapping(body, secrets, extra_names), ensure_ascii=False)
    stripped = body.strip()
    if stripped[:1] in "{[":
        try:
            return json.dumps(redact_mapping(json.loads(stripped), secrets, extra_names), ensure_ascii=False)
        except ValueError:
            pass
    if "x-www-form-urlencoded" in content_type or ("=" in stripped and " " not in stripped and "<" not in stripped):
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
        return True
