"""The circuit breaker's state in the shared cache, including the write-free path of a success on a
closed circuit (before_call tells record_success whether there is anything to clear)."""

from unittest import mock

import pytest
from django.core.cache import cache

import integrations.breaker as breaker_module
from integrations.breaker import CircuitBreaker
from integrations.errors import CircuitOpen


@pytest.fixture
def breaker():
    return CircuitBreaker("test-breaker", threshold=3, cooldown=30)


def _call(breaker, ok):
    dirty = breaker.before_call()
    if ok:
        breaker.record_success(dirty)
    else:
        breaker.record_failure()


def test_success_on_a_clean_closed_circuit_writes_nothing(breaker):
    with mock.patch.object(breaker_module.cache, "delete_many", wraps=cache.delete_many) as delete_many:
        for _ in range(5):
            _call(breaker, ok=True)
    assert delete_many.call_count == 0
    assert breaker.state == "closed"


def test_a_success_after_failures_resets_the_count(breaker):
    _call(breaker, ok=False)
    _call(breaker, ok=False)
    assert breaker.before_call() is True  # failures counted: a success must clear them
    _call(breaker, ok=True)
    assert cache.get(f"{breaker.key}:failures") is None
    assert breaker.before_call() is False
    # Consecutive failures only: two more do not open it, the third does.
    _call(breaker, ok=False)
    _call(breaker, ok=False)
    assert breaker.state == "closed"
    _call(breaker, ok=False)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_opens_after_threshold_and_half_open_trial_closes_it(breaker, monkeypatch):
    for _ in range(3):
        _call(breaker, ok=False)
    assert breaker.state == "open"
    later = breaker_module.time.time() + 31
    monkeypatch.setattr(breaker_module.time, "time", lambda: later)
    assert breaker.state == "half-open"
    dirty = breaker.before_call()  # this caller is the trial
    assert dirty is True
    with pytest.raises(CircuitOpen):  # one trial at a time
        breaker.before_call()
    breaker.record_success(dirty)
    assert breaker.state == "closed"
    assert breaker.before_call() is False
    assert cache.get(f"{breaker.key}:trial") is None


def test_half_open_trial_failure_reopens(breaker, monkeypatch):
    for _ in range(3):
        _call(breaker, ok=False)
    later = breaker_module.time.time() + 31
    monkeypatch.setattr(breaker_module.time, "time", lambda: later)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    assert cache.get(f"{breaker.key}:trial") is None


def test_record_success_without_argument_still_clears(breaker):
    for _ in range(3):
        _call(breaker, ok=False)
    breaker.record_success()
    assert breaker.state == "closed" and cache.get(f"{breaker.key}:failures") is None
    breaker.reset()
    assert breaker.state == "closed"


def test_a_clean_circuit_is_trusted_briefly_and_own_failures_end_that(breaker, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(breaker_module.time, "monotonic", lambda: now[0])
    assert breaker.before_call() is False
    # Another worker opens the circuit: this process, having just seen it clean, may go on briefly...
    cache.set(f"{breaker.key}:opened", breaker_module.time.time(), timeout=None)
    with mock.patch.object(breaker_module.cache, "get_many", wraps=cache.get_many) as get_many:
        assert breaker.before_call() is False
        assert get_many.call_count == 0
    # ... and sees it once CLEAN_FOR has passed.
    now[0] += breaker_module.CLEAN_FOR + 0.01
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    # Its own failures are seen at once.
    breaker.reset()
    assert breaker.before_call() is False
    for _ in range(3):
        breaker.record_failure()
    with pytest.raises(CircuitOpen):
        breaker.before_call()
