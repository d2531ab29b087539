"""Moamalat's SecureHash, in one place: the checkout's, the notification's and the server API's.

HMAC-SHA256 over `Name=value` pairs sorted by name and joined with "&" (no URL-encoding: every
value we sign is digits or our reference's A-Z 0-9 "-"), keyed with the merchant's key decoded from
hex, written as upper-case hex. The gateway accepts either case and so do we when checking.
"""

import hmac
import re
from hashlib import sha256

# Which fields each hash covers (PROTOCOLS: checkout, notification, FilterTransactions/RefundTransaction).
CHECKOUT_FIELDS = ("Amount", "DateTimeLocalTrxn", "MerchantId", "MerchantReference", "TerminalId")
NOTIFICATION_FIELDS = ("Amount", "Currency", "DateTimeLocalTrxn", "MerchantId", "TerminalId")
API_FIELDS = ("DateTimeLocalTrxn", "MerchantId", "TerminalId")


_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


class BadKey(ValueError):
    """The key is not hexadecimal: a misconfigured row, never a wrong signature."""


def decode_key(hex_key):
    text = str(hex_key or "").strip()
    if not text:
        raise BadKey("The key is empty.")
    if not _HEX.fullmatch(text):
        raise BadKey("The key must be hexadecimal: pairs of the digits 0-9 and letters A-F.")
    return bytes.fromhex(text)


def signed_text(fields):
    return "&".join(f"{name}={'' if value is None else value}" for name, value in sorted(fields.items()))


def secure_hash(hex_key, fields):
    """The SecureHash of `fields` ({name: value}) keyed with `hex_key`, upper-case hex."""
    return hmac.new(decode_key(hex_key), signed_text(fields).encode(), sha256).hexdigest().upper()


def hash_matches(hex_key, fields, received):
    """Whether `received` is the SecureHash of `fields`: either case, constant time. A key that is
    not hex raises BadKey (the row is misconfigured; the caller refuses and says so)."""
    expected = secure_hash(hex_key, fields).encode()
    # Bytes on both sides: compare_digest refuses non-ASCII text, and a forged field may hold any.
    given = str(received or "").strip().upper().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected, given)
