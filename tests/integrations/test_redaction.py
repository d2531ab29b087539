import json
import logging

from integrations.redaction import MASK, RedactingFilter, redact_body, redact_headers, redact_text, redact_url


def test_form_body_api_key_and_password_are_masked():
    body = redact_body(
        "key=abc123secret&action=add&password=hunter22&link=https%3A%2F%2Fx.ly", "application/x-www-form-urlencoded"
    )
    assert "abc123secret" not in body and "hunter22" not in body
    assert "action=add" in body and "link=https" in body


def test_query_string_secrets_are_masked():
    url = redact_url("https://p.ly/api?api_key=XYZ987654&order=5&token=tok_1234567")
    assert "XYZ987654" not in url and "tok_1234567" not in url and "order=5" in url


def test_authorization_header_keeps_scheme_only():
    headers = redact_headers(
        {"Authorization": "Bearer eyJhbGciOi.payload.sig", "X-API-KEY": "k-123456", "Accept": "json"}
    )
    assert headers == {"Authorization": f"Bearer {MASK}", "X-API-KEY": MASK, "Accept": "json"}


def test_json_bodies_nested_secrets_and_card_numbers():
    body = json.dumps(
        {
            "card": {"card_number": "4111111111111111", "cvv": "123"},
            "note": "paid with 4111 1111 1111 1111",
            "access_token": "abc.def.ghi",
            "amount": "10.500",
        }
    )
    out = json.loads(redact_body(body))
    assert out["card"] == {"card_number": MASK, "cvv": MASK}
    assert out["access_token"] == MASK and out["amount"] == "10.500"
    assert "1111 1111 1111" not in out["note"] and out["note"].endswith("1111")


def test_non_luhn_long_numbers_are_left_alone():
    assert redact_text("order 1234567890123 shipped") == "order 1234567890123 shipped"


def test_provider_secret_values_are_masked_anywhere():
    assert (
        redact_text("echo: the key was SuperSecretValue1 ok", secrets=["SuperSecretValue1"])
        == f"echo: the key was {MASK} ok"
    )


def test_log_lines_are_redacted():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling with api_key=%s", ("LIVEKEY123456",), None)
    RedactingFilter().filter(record)
    assert "LIVEKEY123456" not in record.getMessage()


def test_json_without_anything_to_mask_is_kept_as_received():
    body = '{"123": {"status": "Pending", "charge": "0.90", "remains": "1000", "currency": "USD"}}'
    assert redact_body(body, "application/json", secrets=("sandbox-key-1",)) == body


def test_every_secret_name_contains_a_fragment_of_the_quick_check():
    from integrations.redaction import _FRAGMENTS, SECRET_NAMES, SECRET_SUFFIXES

    assert all(any(fragment in name for fragment in _FRAGMENTS) for name in SECRET_NAMES)
    assert all(any(fragment in suffix for fragment in _FRAGMENTS) for suffix in SECRET_SUFFIXES)


def test_json_quick_check_does_not_miss_secrets():
    cases = [
        ({"Password": " leading space"}, "leading space"),
        ({"nested": [{"PIN": "'1234'"}]}, "1234"),
        ({"note": "Bearer abcdefghijkl"}, "abcdefghijkl"),
        ({"note": "paid with 4111-1111-1111-1111"}, "4111-1111-1111-1111"),
        ({"note": "card " + "\u0664" + "\u0661" * 15}, "\u0661" * 11),  # Arabic-Indic digits, Luhn-valid
        ({"echo": "the value SuperSecretValue1 came back"}, "SuperSecretValue1"),
        ({"Pa\u017f\u017fword": "x"}, None),  # a key some pattern folds to "password": redacted by pattern
        ({"merchant_ref": "hidden"}, "hidden"),  # an adapter's own secret field name
    ]
    for doc, secret in cases:
        body = json.dumps(doc, ensure_ascii=False)
        out = redact_body(body, "application/json", secrets=("SuperSecretValue1",), extra_names={"merchant_ref"})
        if secret is not None:
            assert secret not in out, (doc, out)
    # Escapes could hide a name or a value from the raw text: such bodies always get the full walk.
    escaped = '{"p\\u0061ssword": "hunter22", "note": "x"}'
    assert "hunter22" not in redact_body(escaped, "application/json")


def test_json_quick_check_matches_the_full_walk_on_random_documents():
    import random

    from integrations.redaction import redact_mapping

    rng = random.Random(7)
    words = ["ok", "Pending", "12", "4111111111111111", "79927398713", "Bearer abcdefghij", "api_key=xyz12345",
             "SuperSecret1", " ", "é", "\u017f", "to\u212aen abcdefg", "-", ":", "="]
    keys = ["a", "status", "Token", "pan", "charge", "P\u0130N"]

    def doc(depth=0):
        r = rng.random()
        if depth < 3 and r < 0.3:
            return {rng.choice(keys): doc(depth + 1) for _ in range(rng.randint(0, 3))}
        if depth < 3 and r < 0.45:
            return [doc(depth + 1) for _ in range(rng.randint(0, 3))]
        if r < 0.55:
            return rng.randint(0, 10**16)
        return "".join(rng.choice(words) for _ in range(rng.randint(0, 3)))

    for _ in range(3000):
        data = {"top": doc()}
        body = json.dumps(data, ensure_ascii=False)
        expected = redact_mapping(data, ("SuperSecret1",))
        assert json.loads(redact_body(body, "application/json", ("SuperSecret1",))) == expected, body


def test_free_text_quick_checks_keep_case_insensitive_matches():
    # Characters that a case-insensitive pattern folds to ASCII letters still count.
    assert "abcdefghij" not in redact_text("to\u212aen abcdefghij")  # KELVIN SIGN for k
    assert "hunter22" not in redact_text("pa\u017f\u017fword=hunter22")  # LONG S for s
    assert "hunter22" not in redact_text("PASSWORD: hunter22")
    assert redact_text("nothing to see 12 here") == "nothing to see 12 here"


def test_card_quick_check_matches_the_full_pattern_on_random_text():
    import random

    from integrations.redaction import _DIGITS, _mask_card

    rng = random.Random(11)
    alphabet = "0123456789" * 3 + "  --.,x\u0661"  # \u0661: an Arabic-Indic digit, matched by \d too
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert redact_text(text) == _DIGITS.sub(_mask_card, text), text


def test_form_fields_are_redacted_and_encoded_in_one_pass():
    from urllib.parse import parse_qsl

    from integrations.redaction import redact_form

    body = redact_form(
        {"key": "abc123secret", "action": "status", "orders": "1,2,3", "note": "echo SuperSecretValue1",
         "ids": ["7", "8"], "skipped": None, "merchant_ref": "mine"},
        secrets=("SuperSecretValue1",), extra_names={"merchant_ref"},
    )
    assert parse_qsl(body) == [("key", MASK), ("action", "status"), ("orders", "1,2,3"), ("note", f"echo {MASK}"),
                               ("ids", "7"), ("ids", "8"), ("merchant_ref", MASK)]
    assert redact_form([("password", "hunter22"), ("card", "4111 1111 1111 1111")]) == (
        "password=[REDACTED]&card=411111%2A%2A%2A%2A%2A%2A1111"
    )
