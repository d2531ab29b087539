"""The redaction filter is wired to the handlers settings.LOGGING configures, not only correct on
its own (test_redaction.py): a secret logged by any module leaves the process masked."""

import io
import logging

import pytest
from django.conf import settings

from integrations.redaction import MASK, RedactingFilter

SECRET_KEY_VALUE = "sk_live_Q7w9E2r4T6y8U0i1"
CARD = "4111 1111 1111 1111"


def configured_handlers():
    """The handlers settings.LOGGING installs, as installed (on the root logger and the loggers it
    names; Django's own default handlers, also called "console", are not these)."""
    config = settings.LOGGING
    wiring = [(logging.getLogger(), config.get("root", {}).get("handlers", []))]
    wiring += [(logging.getLogger(name), spec.get("handlers", [])) for name, spec in config.get("loggers", {}).items()]
    found = {}
    for logger, names in wiring:
        for name in names:
            (handler,) = [h for h in logger.handlers if h.get_name() == name]
            found[name] = handler
    assert found, "settings.LOGGING installs no handler"
    return found


@pytest.fixture
def console():
    handler = configured_handlers()["console"]
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def test_every_configured_handler_carries_the_redaction_filter():
    for name, handler in configured_handlers().items():
        assert any(isinstance(f, RedactingFilter) for f in handler.filters), name


@pytest.mark.parametrize("logger_name", ["smm", "integrations.http", "monitoring.health", "django.request"])
def test_a_secret_logged_by_any_module_is_masked_on_the_console(console, logger_name):
    logging.getLogger(logger_name).error("panel answered: api_key=%s, card %s, Authorization: Bearer abc.def.ghi",
                                         SECRET_KEY_VALUE, CARD)
    output = console.getvalue()
    assert "panel answered" in output
    assert SECRET_KEY_VALUE not in output and CARD not in output and "abc.def.ghi" not in output
    assert MASK in output
