"""Redaction on hostile inputs: linear time on adversarial markup, and log lines whose traceback
quotes a secret."""

import logging
import sys
import time

from integrations.redaction import MASK, RedactingFilter, redact_body, redact_text

N = 100_000


def _timed(body, content_type="text/xml"):
    started = time.perf_counter()
    out = redact_body(body, content_type, ("sk_live_abcdef",), ())
    return time.perf_counter() - started, out


def test_a_long_word_inside_a_tag_is_not_quadratic():
    # Every character of the word used to start a scan to its end: minutes for 100 KB.
    seconds, _out = _timed("<x " + "a" * N + ">")
    assert seconds < 0.5


def test_a_long_word_inside_a_tag_of_a_log_line_is_not_quadratic():
    started = time.perf_counter()
    redact_text("token <x " + "a" * N + ">")
    assert time.perf_counter() - started < 0.5


def test_unclosed_cdata_sections_are_not_quadratic():
    for body in ("<a><![CDATA[" * (N // 12), "<a><![CDATA[" * (N // 12) + "]]>"):
        seconds, _out = _timed(body)
        assert seconds < 0.5


def test_secret_attributes_and_cdata_elements_are_still_masked():
    _s, out = _timed('<a wsse:Password="pw1" x:token=\'t1\' Password = "p2" n="1"password="p3"/>')
    assert "pw1" not in out and "t1" not in out and "p2" not in out and "p3" not in out
    assert 'n="1"' in out
    _s, out = _timed('<r><wsse:Password Type="x"><![CDATA[s3cr<et]]></wsse:Password><n>1</n></r>')
    assert "s3cr" not in out and f">{MASK}</wsse:Password>" in out and "<n>1</n>" in out


def test_a_logged_traceback_is_redacted(caplog):
    record_logger = logging.getLogger("tests.redaction.traceback")
    try:
        raise ValueError("Max retries exceeded with url: /v1/orders?api_key=sk_live_0123456789 card 4111 1111 1111 1111")  # noqa: E501
    except ValueError:
        record = record_logger.makeRecord(record_logger.name, logging.ERROR, __file__, 1, "the call failed", (),
                                          sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter("%(message)s").format(record)
    assert "sk_live_0123456789" not in text and "4111 1111 1111 1111" not in text
    assert "ValueError" in text


def test_a_secret_element_split_by_a_comment_is_masked():
    _s, out = _timed("<r><Password>hun<!-- x -->ter2</Password><n>1</n></r>")
    assert "hun" not in out and "ter2" not in out and "<n>1</n>" in out
    seconds, _out = _timed("<a><!--" * (N // 7))
    assert seconds < 0.5


def test_an_html_form_field_quoted_back_has_its_value_masked():
    _s, out = _timed('<form><input type="password" name="password" value="hunter2"><input name="q" value="ok"></form>',
                     "text/html")
    assert "hunter2" not in out and 'value="ok"' in out
