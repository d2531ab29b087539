"""provider_lock: one holder per (job, provider); a holder whose lock expired never releases the
lock of the holder that took it over."""

from django.core.cache import cache

from integrations.locks import provider_lock


def test_a_second_holder_is_refused_while_the_lock_is_held_and_admitted_after():
    with provider_lock(7, "sync") as first:
        assert first
        with provider_lock(7, "sync") as second:
            assert not second
        with provider_lock(8, "sync") as other_provider, provider_lock(7, "poll") as other_job:
            assert other_provider and other_job
    with provider_lock(7, "sync") as again:
        assert again


def test_a_holder_whose_lock_expired_does_not_release_the_next_holders_lock():
    with provider_lock(7, "poll", ttl=1) as first:
        assert first
        # The first holder outlived its TTL and a newer holder took the key meanwhile.
        cache.set("lock:poll:7", "newer-holder", 60)
    assert cache.get("lock:poll:7") == "newer-holder"
    with provider_lock(7, "poll") as third:
        assert not third
