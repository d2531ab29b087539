"""The embedded default's cache keeps `add` and `incr` atomic between processes, as Redis does: of
many processes adding one key, exactly one wins, and no increment is lost."""

import multiprocessing

import pytest
from django.conf import settings
from django.core.cache import cache

from eishro.cache import FileCache


def _race(location, key, start, results):
    backend = FileCache(location, {})
    start.wait()
    won = backend.add(key, "mine", 30)
    for _ in range(20):
        backend.incr(key + ":n")
    results.put(won)


@pytest.mark.skipif(settings.CACHES["default"]["BACKEND"] != "eishro.cache.FileCache",
                    reason="the embedded default's cache only (Redis is atomic by itself)")
def test_many_processes_adding_one_key_make_one_winner_and_lose_no_increment():
    location = settings.CACHES["default"]["LOCATION"]
    backend = FileCache(location, {})
    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        key = f"race-{round_}"
        backend.delete(key)
        backend.set(key + ":n", 0, 30)
        start, results = context.Event(), context.Queue()
        workers = [context.Process(target=_race, args=(location, key, start, results)) for _ in range(6)]
        for worker in workers:
            worker.start()
        start.set()
        outcomes = [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert outcomes.count(True) == 1
        assert backend.get(key + ":n") == 6 * 20


def test_the_configured_cache_adds_once():
    assert cache.add("once", 1, 30) is True
    assert cache.add("once", 2, 30) is False
    assert cache.get("once") == 1
