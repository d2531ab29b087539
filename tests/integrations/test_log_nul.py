"""A provider may answer raw bytes: a NUL in its body, headers or error text must not fail the log
row's INSERT (PostgreSQL refuses NUL in text and jsonb), and with it the call."""

import pytest

from integrations.errors import ProviderProtocolError
from integrations.models import IntegrationLog
from integrations.tracing import Tracer

pytestmark = pytest.mark.django_db


def test_nul_characters_are_stored_as_replacement_characters(make_provider):
    provider = make_provider()
    tracer = Tracer(provider, transport="http")
    with pytest.raises(ProviderProtocolError):
        with tracer.call("status", endpoint="https://pay.example.test/a\x00b", method="GET") as call:
            call.response("\x00\x01garbage", status=200, content_type="application/octet-stream",
                          headers={"X-Odd": "a\x00b"})
            raise ProviderProtocolError("unreadable answer: \x00\x01")
    row = IntegrationLog.objects.get(integration=provider)
    assert "\x00" not in row.response_body and "\ufffd\x01garbage" in row.response_body
    assert row.response_headers["X-Odd"] == "a\ufffdb"
    assert row.error_message.endswith("\ufffd\x01") and "\x00" not in row.endpoint
