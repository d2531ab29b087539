"""Issue 12, point 15: the fault suite. A real worker SIGKILLed during submissions, the broker and
the cache (a Redis of the test's own) stopped during API writes, a lost answer after the panel
accepted. Afterwards, once the sweeps have run: every order was placed at the simulated panel
exactly once or is under review (`unknown`, never sent again blindly), none is left queued, and the
API answered no 500.

Orders are told apart at the simulator (smm/sandbox.py) by their link, one per order."""

import logging
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.sandbox import clear_fault, set_fault
from smm import orders, tasks
from smm.models import PANEL_STATES, SandboxPanelOrder, SMMOrder, SMMService
from tests.conftest import set_eager, wait_for
from tests.smm.conftest import first_service

from .support import REDIS_SERVER, OwnRedis, publishing_to

CODE, SIZE = "jap", 60
ON_REDIS = bool(settings.REDIS_URL)
needs_redis = pytest.mark.skipif(
    not (ON_REDIS and REDIS_SERVER),
    reason="Redis-specific faults (a Redis of the test's own, stopped and restarted): they run on the "
           "PostgreSQL and Redis run (REDIS_URL set and redis-server installed); the embedded default has no Redis",
)


@pytest.fixture
def panel(sandbox_provider):
    """The simulated panel over real HTTP, with one Default service; `add` answers fast by default."""
    provider = sandbox_provider(CODE, catalogue_size=SIZE, balance="100000")
    spec = first_service(CODE, SIZE, "Default")
    SMMService.objects.create(provider=provider, service_id=str(spec["service"]), name=spec["name"], type="Default",
                              category=spec["category"], rate=spec["rate"], min_quantity=spec["min"],
                              max_quantity=spec["max"])
    provider.order_body = {"providerId": provider.pk, "serviceId": str(spec["service"]), "quantity": spec["min"]}
    return provider


class Client:
    """The merchant's API client, keeping every status it was answered (an exception is a 500)."""

    def __init__(self, api, panel, scenario):
        api.raise_request_exception = False
        self.api, self.panel, self.scenario, self.answers, self.pks = api, panel, scenario, [], []

    def order(self, n):
        key = f"{self.scenario}-{n}"
        body = {**self.panel.order_body, "link": f"https://instagram.com/p/{key}"}
        answer = self.api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        self.answers.append(answer.status_code)
        if answer.status_code in (200, 201):
            self.pks.append(answer.json()["orderId"])
        return answer


class Own:
    """A cache and a broker of the test's own, so that no other test process (their `cache.clear()`,
    their workers) touches its faults or its messages: a Redis on another port on the Redis run, a
    file cache and a filesystem broker in a folder of its own on the embedded default."""

    def __init__(self, settings, tmp_path):
        if ON_REDIS and REDIS_SERVER:
            self.redis = OwnRedis().start()
            cache_location = self.redis.url(0)
            settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": cache_location}}
            self.worker_env = {"REDIS_URL": cache_location, "CELERY_BROKER_URL": self.redis.url(1)}
            self.publisher = (self.redis.url(1), None, None)
        else:
            self.redis = None
            var = tmp_path / "var"
            settings.CACHES = {"default": {"BACKEND": "eishro.cache.FileCache", "LOCATION": str(var / "cache")}}
            self.worker_env = {"EISHRO_VAR_DIR": str(var), "CELERY_BROKER_URL": "filesystem://"}
            folders = {name: str(var / "broker" / folder) for name, folder in (
                ("data_folder_in", "queue"), ("data_folder_out", "queue"), ("control_folder", "control"),
                ("claimed_folder", "claimed"), ("rejected_folder", "rejected"))}
            self.publisher = ("filesystem://", "eishro.broker:Transport", {**folders, "polling_interval": 0.1})

    @contextmanager
    def publishing(self):
        """Tasks sent from this process go to this broker (not run in-process)."""
        set_eager(False)
        try:
            with publishing_to(*self.publisher):
                yield
        finally:
            set_eager(True)


@pytest.fixture
def own(settings, tmp_path):
    own = Own(settings, tmp_path)
    yield own
    if own.redis is not None:
        own.redis.kill()


def wait_until_still(read, done, quiet=3.0, timeout=30.0):
    """Poll `read()` until `done(value)`, or until its value has not changed for `quiet` seconds."""
    deadline = time.time() + timeout
    last, since = object(), time.time()
    while time.time() < deadline:
        value = read()
        if done(value):
            return value
        if value != last:
            last, since = value, time.time()
        elif time.time() - since >= quiet:
            return value
        time.sleep(0.1)
    raise AssertionError(f"still moving after {timeout} s: {last}")


def settle_and_check(client):
    """Run the sweeps as beat would once no worker is left, then check every order's fate."""
    # No worker is alive: whatever is still `submitting` was interrupted. The stale sweep as it runs
    # one threshold from now:
    orders.submission.sweep_stale(now=timezone.now() + orders.STALE_SUBMISSION + timedelta(seconds=1))
    tasks.retry_queued_orders.apply(kwargs={"limit": 1000}).get()

    assert 500 not in client.answers and all(code in (200, 201, 503) for code in client.answers), client.answers
    mine = SMMOrder.objects.filter(pk__in=client.pks)
    assert mine.count() == len(set(client.pks)) > 0
    assert not mine.filter(status__in=["created", "submitting"]).exists(), "left queued after the sweeps"
    fates = {}
    for order in mine:
        placed = list(SandboxPanelOrder.objects.filter(link=order.link).values_list("pk", flat=True))
        if order.status == "unknown":
            assert len(placed) <= 1, (order.pk, placed)
        else:
            assert order.status in PANEL_STATES and placed == [int(order.external_order_id)], (order.pk, placed)
        fates[order.status] = fates.get(order.status, 0) + 1
    links = set(mine.values_list("link", flat=True))
    assert not SandboxPanelOrder.objects.exclude(link__in=links).filter(link__contains=client.scenario).exists()
    return fates


@pytest.mark.worker
def test_a_worker_sigkilled_during_submissions(api, panel, start_worker, own):
    client = Client(api, panel, "killed")
    # Each `add` takes a while at the panel, so that the kill finds sends in flight.
    set_fault("smm", CODE, latency_ms=700, match={"action": "add"})
    with own.publishing():
        worker = start_worker("killed", **own.worker_env)
        for n in range(12):
            assert client.order(n).status_code == 201
        wait_for(lambda: SMMOrder.objects.filter(pk__in=client.pks, status="submitting").count() >= 2, timeout=30)
        worker.kill()
        in_flight = SMMOrder.objects.filter(pk__in=client.pks, status="submitting").count()
        assert in_flight >= 1
        clear_fault("smm", CODE)

        # A worker started again takes what is still in the queue; a killed worker's own messages
        # come back only after the visibility timeout (Redis) or never (the file broker).
        # The messages the killed worker had taken but not started are lost on the file broker, so
        # their orders stay `created` for the sweep: wait until nothing is queued, or until the
        # orders stop moving (the new worker has drained what the queue still held).
        worker = start_worker("killed", **own.worker_env)
        wait_until_still(lambda: list(SMMOrder.objects.filter(pk__in=client.pks).order_by("pk")
                                      .values_list("status", flat=True)),
                         done=lambda states: "created" not in states or worker.proc.poll() is not None)
        worker.stop()
    fates = settle_and_check(client)
    assert fates.get("unknown", 0) == in_flight  # exactly the interrupted sends are under review
    assert sum(fates.values()) == 12


@needs_redis
@pytest.mark.worker
def test_the_broker_and_the_cache_stopped_during_api_writes(api, panel, start_worker, own, caplog):
    client = Client(api, panel, "redis-down")
    redis = own.redis
    with own.publishing():
        worker = start_worker("redis-down", **own.worker_env)
        for n in range(4):
            assert client.order(n).status_code == 201
        wait_for(lambda: not SMMOrder.objects.filter(pk__in=client.pks, status__in=["created", "submitting"])
                 .exists(), timeout=30)

        redis.kill()  # the broker and the cache at once; without persistence, its queue is gone too
        with caplog.at_level(logging.WARNING):
            for n in range(4, 8):
                assert client.order(n).status_code == 201
            assert client.order(4).status_code == 200  # a client's retry: the same order
            assert api.get("/api/smm/orders").status_code == 200
        # (The cache's own line is logged once every 30 s per piece: an earlier test may have had it.)
        assert "could not be queued" in caplog.text
        outage = SMMOrder.objects.filter(pk__in=client.pks[4:])
        assert set(outage.values_list("status", flat=True)) == {"created"}  # safe in the outbox

        redis.start()  # the same port, empty
        for n in range(8, 12):
            assert client.order(n).status_code == 201
        wait_for(lambda: not SMMOrder.objects.filter(pk__in=client.pks[-4:], status__in=["created", "submitting"])
                 .exists(), timeout=45)
        worker.stop()
        still_queued = outage.filter(status="created").count()
    fates = settle_and_check(client)
    assert still_queued >= 1  # the outage's orders waited for the sweep (or a retry), and it sent them
    assert fates == {"pending": 12}


@pytest.mark.django_db(transaction=True)
def test_a_lost_answer_after_the_panel_accepted(api, panel, own):
    # A short timeout, so that a hang past it is quick to reach.
    panel.integration.configuration = {**panel.integration.configuration, "timeout": 1}
    panel.integration.save()
    client = Client(api, panel, "lost")
    # The panel places the order, then a proxy answers 502 in its place.
    set_fault("smm", CODE, after=True, status=502, match={"action": "add"}, times=1)
    client.order(0)
    # The panel places the order, then the answer comes after the caller gave up.
    set_fault("smm", CODE, after=True, hang_s=2, match={"action": "add"}, times=1)
    client.order(1)
    clear_fault("smm", CODE)
    client.order(2)
    assert [SMMOrder.objects.get(pk=pk).status for pk in client.pks] == ["unknown", "unknown", "pending"]
    # A client's retries and every sweep later, neither lost answer was sent again.
    client.order(0)
    client.order(1)
    fates = settle_and_check(client)
    assert fates == {"unknown": 2, "pending": 1}
    assert SandboxPanelOrder.objects.filter(link__contains="lost").count() == 3
