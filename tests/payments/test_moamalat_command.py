"""`manage.py moamalat_hash`: the hash an operator checks by hand, and one readable line on bad input."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from .moamalat_support import MID, NOTIFICATION_KEY, SECURE_KEY, TID, independent_hash

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    out = StringIO()
    call_command("moamalat_hash", *args, stdout=out)
    return out.getvalue().strip()


def test_it_prints_the_checkout_hash_of_the_public_test_terminal_whatever_the_order_of_fields():
    fields = [f"TerminalId={TID}", "Amount=1000", f"MerchantId={MID}", "MerchantReference=ORDER-1",
              "DateTimeLocalTrxn=202611250830"]
    assert run("--key", SECURE_KEY, *fields) == "49086A0140F27D98BD1291014B039DF88F2998C76A384407AC1A1B31538FC542"
    assert run("--key", SECURE_KEY.lower(), *reversed(fields)).endswith("538FC542")


def test_it_prints_a_notification_hash_and_the_signed_text_on_request():
    text = f"Amount=1000&Currency=434&DateTimeLocalTrxn=20261125083000&MerchantId={MID}&TerminalId={TID}"
    lines = run("--key", NOTIFICATION_KEY, "--show-text", *text.split("&")).splitlines()
    assert lines == [text, independent_hash(NOTIFICATION_KEY, text)]


def test_a_value_may_contain_an_equals_sign_or_be_empty():
    assert run("--key", "00", "A=x=y", "B=") == independent_hash("00", "A=x=y&B=")


@pytest.mark.parametrize(("args", "message"), [
    (["--key", "xyz", "A=1"], "hexadecimal"),
    (["--key", "ABC", "A=1"], "hexadecimal"),
    (["--key", "00", "Amount"], "NAME=VALUE"),
    (["--key", "00", "=1"], "NAME=VALUE"),
    (["--key", "00", "A=1", "A=2"], "twice"),
])
def test_bad_input_is_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_bad_input_exits_non_zero_with_one_readable_line():
    done = subprocess.run([sys.executable, "manage.py", "moamalat_hash", "--key", "not-hex", "Amount=1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    # The operator reads it in the site's language (Arabic): the catalogue's words for the message.
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        expected = translation.gettext("The key must be hexadecimal: pairs of the digits 0-9 and letters A-F.")
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr
