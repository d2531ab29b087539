"""Prefetcher: one call at a time on a helper thread, in order, bounded run-ahead, errors handed
over at their place, a clean stop."""

import threading
import time

import pytest

from smm.prefetch import Prefetcher


class Recorder:
    """fn for the prefetcher: records which thread called it and how many calls overlapped."""

    def __init__(self, delay=0.0, fail_on=None):
        self.delay, self.fail_on = delay, fail_on
        self.lock = threading.Lock()
        self.active = self.most_active = 0
        self.calls, self.threads = [], set()

    def __call__(self, item):
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.calls.append(item)
            self.threads.add(threading.get_ident())
        try:
            time.sleep(self.delay)
            if item == self.fail_on:
                raise ValueError(f"call {item} failed")
            return item * 10
        finally:
            with self.lock:
                self.active -= 1


def test_answers_come_in_order_from_one_call_at_a_time_on_another_thread():
    fn = Recorder(delay=0.002)
    with Prefetcher(fn, depth=3) as ahead:
        for item in range(12):
            ahead.put(item)
        assert [ahead.get() for _ in range(12)] == [item * 10 for item in range(12)]
    assert fn.calls == list(range(12))
    assert fn.most_active == 1
    assert fn.threads and threading.get_ident() not in fn.threads


def test_a_failed_call_is_raised_in_its_place_and_no_call_follows_it():
    fn = Recorder(fail_on=2)
    with Prefetcher(fn, depth=5) as ahead:
        for item in range(6):
            ahead.put(item)
        assert ahead.get() == 0 and ahead.get() == 10
        with pytest.raises(ValueError, match="call 2 failed"):
            ahead.get()
        ahead.put(9)  # queued after the failure: never called, and no error from queueing it
    assert fn.calls == [0, 1, 2]


def test_it_runs_ahead_by_at_most_depth_answers():
    fn = Recorder()
    with Prefetcher(fn, depth=2) as ahead:
        for item in range(10):
            ahead.put(item)
        time.sleep(0.2)  # a slow caller
        # Two answers waiting, the third call made and waiting for room.
        assert fn.calls == [0, 1, 2]
        assert ahead.get() == 0
        time.sleep(0.1)
        assert fn.calls == [0, 1, 2, 3]


def test_stop_lets_the_call_in_flight_finish_and_drops_the_rest():
    fn = Recorder(delay=0.1)
    ahead = Prefetcher(fn, depth=1)
    for item in range(5):
        ahead.put(item)
    time.sleep(0.05)  # call 0 is in flight
    ahead.stop()
    assert fn.active == 0  # stop returned after the call in flight ended
    assert fn.calls in ([0], [0, 1])  # at most the call that had started when stop was asked
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_ready_tells_whether_an_answer_is_waiting():
    fn = Recorder(delay=0.05)
    with Prefetcher(fn, depth=2) as ahead:
        assert not ahead.ready()
        ahead.put(1)
        assert not ahead.ready()  # still in flight
        time.sleep(0.15)
        assert ahead.ready()
        assert ahead.get() == 10 and not ahead.ready()


def test_no_thread_is_started_until_there_is_a_call_to_make():
    before = threading.active_count()
    with Prefetcher(Recorder(), depth=2, name="idle-prefetch") as ahead:
        assert threading.active_count() == before and not ahead.ready()
    assert not any(t.name == "idle-prefetch" for t in threading.enumerate())
