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
