"""The wallet behind the three wallet simulators (MobiCash, Sadad, 1Pay): payment sessions, one-time
codes "sent by SMS", confirmation, status and refunds. Each simulator module speaks its own wire
format over this book; docs/protocols/wallets.md describes the three.

State lives in the shared cache, so every web worker, the tests and the demo see the same wallet.
A merchant is one of the project's rows of that wallet's code: the simulator knows it by its
merchant id and checks its secret as the wallet would (what a merchant set in the wallet's portal).

Sandbox rules (documented for the demo):
  - the code is six digits, valid OTP_TTL_S seconds, MAX_ATTEMPTS wrong tries end the payment;
  - a number ending in 0000 has an empty wallet (confirm fails: insufficient balance), one ending
    in 9999 has no wallet (initiate refused);
  - the texts a number received are read at <simulator>/_sms/?phone=+2189… (sandbox only).
Idempotency: one live session per (merchant, reference): initiating it again resends the same code
and returns the same session; confirming a paid session again answers the same payment; a refund
reference is refunded once.
"""

import hmac
import secrets
import time
from decimal import Decimal

from django.core.cache import cache
from django.db.models import F
from django.http import JsonResponse

from integrations.models import ExternalIntegration

TTL = 7 * 86400
OTP_TTL_S = 300
MAX_ATTEMPTS = 3
INBOX_SIZE = 20
EMPTY_WALLET_SUFFIX = "0000"
NO_WALLET_SUFFIX = "9999"
PAID_STATES = ("paid", "partially_refunded", "refunded")


class WalletError(Exception):
    """A refusal of the wallet: `code` (NOT_FOUND, INVALID_OTP, ...) and the wallet's words."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _same(stored, given):
    return bool(stored) and hmac.compare_digest(str(stored).encode(), str(given or "").encode())


class _Lock:
    def __init__(self, key):
        self.key = key

    def __enter__(self):
        deadline = time.monotonic() + 10
        while not cache.add(self.key, 1, 30):
            if time.monotonic() > deadline:
                raise TimeoutError(self.key)
            time.sleep(0.01)

    def __exit__(self, *exc):
        cache.delete(self.key)


class WalletBook:
    def __init__(self, code, label):
        self.code, self.label = code, label
        self.prefix = f"sandbox:wallet:{code}:"

    # --- merchants ------------------------------------------------------------------------------
    def merchant(self, merchant_id, **secret):
        """The row that registered this merchant id (the platform's first, as Moamalat's simulator
        picks a terminal) if the secret credential(s) given are its own, else None."""
        merchant_id = str(merchant_id or "").strip()
        if not merchant_id:
            return None
        rows = ExternalIntegration.objects.filter(code=self.code).order_by(
            F("owner").asc(nulls_first=True), "priority", "created_at")
        row = next((r for r in rows if str((r.credentials or {}).get("merchant_id", "")).strip() == merchant_id), None)
        if row is None or not all(_same((row.credentials or {}).get(k), v) for k, v in secret.items()):
            return None
        return row

    # --- sessions -------------------------------------------------------------------------------
    def _key(self, *parts):
        return self.prefix + ":".join(str(p) for p in parts)

    def _next(self, kind):
        cache.add(self._key("seq", kind), 100_000, TTL)
        return cache.incr(self._key("seq", kind))

    def _save(self, session):
        cache.set(self._key("ses", session["id"]), session, TTL)
        cache.set(self._key("ref", session["merchant_id"], session["reference"]), session["id"], TTL)
        if session.get("transaction_id"):
            cache.set(self._key("txn", session["merchant_id"], session["transaction_id"]), session["id"], TTL)

    def session(self, merchant_id, session_id):
        found = cache.get(self._key("ses", session_id)) if session_id else None
        if not found or found["merchant_id"] != str(merchant_id):
            return None
        return self._aged(found)

    def by_reference(self, merchant_id, reference):
        return self.session(merchant_id, cache.get(self._key("ref", merchant_id, reference)))

    def by_transaction(self, merchant_id, transaction_id):
        return self.session(merchant_id, cache.get(self._key("txn", merchant_id, transaction_id)))

    def _aged(self, session):
        if session["state"] == "otp_sent" and time.time() > session["expires"]:
            session.update(state="expired", message="The one-time code has expired")
            self._save(session)
        return session

    def initiate(self, merchant_id, reference, phone, amount, prefix, **extra):
        """The live session of (merchant, reference), its code sent (again) to the payer's phone."""
        merchant_id, amount = str(merchant_id), Decimal(amount)
        if phone.endswith(NO_WALLET_SUFFIX):
            raise WalletError("NOT_REGISTERED", f"{phone} has no {self.label} wallet")
        with _Lock(self._key("lock", merchant_id, reference)):
            session = self.by_reference(merchant_id, reference)
            if session and session["state"] in PAID_STATES:
                raise WalletError("ALREADY_PAID", f"Reference {reference} is already paid")
            if session and session["state"] == "otp_sent":
                if session["phone"] != phone or Decimal(session["amount"]) != amount:
                    raise WalletError("REFERENCE_MISMATCH",
                                      f"Reference {reference} is under way with another number or amount")
            else:
                session = {
                    "id": f"{prefix}{self._next('session')}", "merchant_id": merchant_id, "reference": reference,
                    "phone": phone, "amount": str(amount), "state": "otp_sent", "attempts": 0,
                    "otp": f"{secrets.randbelow(10 ** 6):06d}", "created": time.time(),
                    "expires": time.time() + OTP_TTL_S, "transaction_id": "", "refunded": "0.000", "refunds": {},
                    "message": "One-time code sent", **extra,
                }
            self._save(session)
        self._text(session)
        return session

    def confirm(self, merchant_id, session_id, otp, reference=""):
        found = self.session(merchant_id, session_id)
        if found is None or (reference and found["reference"] != reference):
            raise WalletError("NOT_FOUND", "No such payment session")
        # Every write of a session holds its reference's lock: a resent code never undoes a payment.
        with _Lock(self._key("lock", merchant_id, found["reference"])):
            session = self.session(merchant_id, session_id)
            if session["state"] != "otp_sent":
                return session  # paid (a retried confirm: the same payment), failed or expired
            if not hmac.compare_digest(str(otp or ""), session["otp"]):
                session["attempts"] += 1
                left = MAX_ATTEMPTS - session["attempts"]
                if left <= 0:
                    session.update(state="failed", message="Too many wrong codes")
                    self._save(session)
                    return session
                self._save(session)
                raise WalletError("INVALID_OTP", f"Wrong one-time code, {left} tries left")
            if session["phone"].endswith(EMPTY_WALLET_SUFFIX):
                session.update(state="failed", message="Insufficient balance")
            else:
                session.update(state="paid", message="Paid", transaction_id=f"T{self._next('txn')}",
                               paid_at=time.time())
            self._save(session)
            return session

    def refund(self, merchant_id, transaction_id, amount, refund_reference):
        amount = Decimal(amount)
        found = self.by_transaction(merchant_id, transaction_id)
        if found is None:
            raise WalletError("NOT_FOUND", "No such transaction")
        with _Lock(self._key("lock", merchant_id, found["reference"])):
            session = self.session(merchant_id, found["id"])
            done = session["refunds"].get(refund_reference)
            if done:
                if Decimal(done["amount"]) != amount:
                    raise WalletError("REFERENCE_MISMATCH", f"Refund {refund_reference} was for another amount")
                return session, done
            if session["state"] not in ("paid", "partially_refunded"):
                raise WalletError("NOT_PAID", f"Transaction {transaction_id} is {session['state']}")
            left = Decimal(session["amount"]) - Decimal(session["refunded"])
            if amount <= 0 or amount > left:
                raise WalletError("REFUND_EXCEEDS", f"Refund amount exceeds the remaining {left:.3f} LYD")
            done = {"id": f"R{self._next('refund')}", "amount": str(amount), "reference": refund_reference}
            session["refunds"][refund_reference] = done
            refunded = Decimal(session["refunded"]) + amount
            session.update(refunded=f"{refunded:.3f}",
                           state="refunded" if refunded == Decimal(session["amount"]) else "partially_refunded")
            self._save(session)
            return session, done

    # --- the payer's phone ----------------------------------------------------------------------
    def _text(self, session):
        key = self._key("sms", session["phone"])
        message = {"phone": session["phone"], "reference": session["reference"], "code": session["otp"],
                   "text": f"{self.label}: your code for {session['reference']} ({session['amount']} LYD) is "
                           f"{session['otp']}", "at": time.time()}
        cache.set(key, [message, *(cache.get(key) or [])][:INBOX_SIZE], TTL)

    def inbox(self, phone):
        return cache.get(self._key("sms", phone)) or []


def inbox_view(book):
    """GET ?phone=+2189…: the texts that number received, newest first (sandbox only: the demo's
    and the tests' way to read a one-time code)."""

    def view(request, code=None):
        phone = request.GET.get("phone", "").strip().replace(" ", "+", 1)  # an unencoded "+" reads as a space
        return JsonResponse({"phone": phone, "messages": book.inbox(phone)})

    return view
