"""The health round: every active provider probed concurrently, results stored, changes recorded.

How a provider is checked is its adapter's business (`Adapter.check_health()` with the
`meta.health` spec: path, timeout, expected status; SMM panels override it with a `balance` call).
A row's configuration may override the URL and the timeout (`health_url`, an absolute URL, and
`health_timeout_ms`: the seed's table gives Moamalat https://api.moamalat.ly/health 5000 ms, Amyal
3000 ms, Almadar 2000 ms on another host than its SMS API). The round measures the time.

The status of one check (documented rule, see also README in the admin help texts):
  * **unhealthy** — the provider answered, but not as expected (wrong HTTP status, a provider error);
  * **error**     — no usable answer at all: timeout, connection refused, no adapter for the code;
  * **degraded**  — it answered as expected, but
      - slower than its threshold: the row's `configuration["degraded_after_ms"]`, else the
        adapter's `meta.health.degraded_after` (seconds), else 60 % of its timeout; or
      - failing part of the time: at least MONITORING_DEGRADED_FAILURES (default 2) of its last
        MONITORING_DEGRADED_WINDOW (default 5) checks, this one included, were unhealthy/error;
  * **healthy**   — otherwise.
The registry row's `health_status` is healthy / degraded / unhealthy ("error" counts as unhealthy).

A round takes about the longest timeout, not the sum: probes run in a thread pool, and a
round-level deadline (longest timeout + grace) stops waiting for a probe that somehow outlives its
own timeout. Each probe gets the least of its own timeout and the time left before the longest
timeout, with no retries (`Adapter.probe_health`), so that its thread ends within the round; only a
probe that ignores its timeout (a blocked adapter) is left behind, recorded as an error. Rounds
never overlap: the round holds a lock in the shared cache (`cache.add`).
"""

import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from integrations.adapters import HealthCheck as HealthSpec
from integrations.adapters import UnknownAdapter, adapter_class, adapter_for, row_health
from integrations.errors import ProviderError
from integrations.models import ExternalIntegration, Health
from integrations.redaction import redact_text

from .models import CheckStatus, HealthCheck, StatusChange

log = logging.getLogger(__name__)

LOCK_KEY = "monitoring:health-round"
DEFAULT_TIMEOUT = 5.0
ROUND_GRACE = 2.0  # at most this many seconds beyond the longest timeout (10 % of it, at least 0.2 s)
MAX_WORKERS = 64

DOWN = frozenset({CheckStatus.UNHEALTHY, CheckStatus.ERROR})


def setting(name, default):
    return getattr(settings, name, default)


def health_spec(integration):
    """(timeout seconds, degraded threshold ms) of a provider; the row's configuration may override."""
    config = integration.configuration or {}
    try:
        spec = adapter_class(integration.code).meta.health
    except UnknownAdapter:
        spec = HealthSpec(timeout=DEFAULT_TIMEOUT)
    try:
        spec = row_health(spec, config)
    except ValidationError:
        pass  # the probe reports the misconfiguration as its error
    timeout, degraded_after = float(spec.timeout or DEFAULT_TIMEOUT), spec.degraded_after
    if config.get("degraded_after_ms"):
        threshold_ms = float(config["degraded_after_ms"])
    elif degraded_after:
        threshold_ms = float(degraded_after) * 1000
    else:
        threshold_ms = 0.6 * timeout * 1000
    return timeout, threshold_ms


@dataclass
class Probe:
    integration: ExternalIntegration
    ok: bool = False
    response_time: float | None = None
    error: str = ""
    answered: bool = False  # the provider answered (wrong status) rather than not at all


@dataclass
class RoundResult:
    skipped: bool = False
    checked: int = 0
    duration: float = 0.0
    longest_timeout: float = 0.0
    statuses: dict = field(default_factory=dict)
    changes: int = 0

    def as_dict(self):
        return {
            "skipped": self.skipped,
            "checked": self.checked,
            "duration": round(self.duration, 3),
            "longest_timeout": self.longest_timeout,
            "statuses": self.statuses,
            "changes": self.changes,
        }


def probe(integration, gate=None, timeout=None, ends_at=None):
    """Check one provider (in a worker thread) within `timeout` seconds and before `ends_at` (a
    time.monotonic() value). Never raises."""
    if gate is not None:
        gate.wait()
    result = Probe(integration)
    t0 = time.perf_counter()
    try:
        adapter = adapter_for(integration)
        if timeout is None:
            timeout = health_spec(integration)[0]
        if ends_at is not None:
            timeout = min(timeout, ends_at - time.monotonic())
        if timeout <= 0:
            # Queued behind other probes until the round's time was up.
            raise ProviderError("No time left in the round.", sent=False)
        adapter.probe_health(timeout)
        result.ok = True
    except UnknownAdapter as exc:
        result.error = str(exc)
    except ProviderError as exc:
        # The provider may quote the key it was sent: this text becomes HealthCheck.error,
        # StatusChange.error, the incident, the alerts, the monitoring API and the dashboard.
        result.error = str(exc.mask(integration.secret_values))
        result.answered = exc.status_code is not None
    except Exception as exc:
        log.exception("health check of %s crashed", integration)
        result.error = redact_text(f"{type(exc).__name__}: {exc}", integration.secret_values)
    finally:
        result.response_time = round((time.perf_counter() - t0) * 1000, 2)
        # Each pool thread has its own connection; never leave it open behind us.
        connection.close()
    return result


def classify(probe_result, threshold_ms, history):
    """The status of one check; `history` = the statuses of the provider's previous checks, newest first."""
    if not probe_result.ok:
        return CheckStatus.UNHEALTHY if probe_result.answered else CheckStatus.ERROR
    if probe_result.response_time is not None and probe_result.response_time > threshold_ms:
        return CheckStatus.DEGRADED
    window = int(setting("MONITORING_DEGRADED_WINDOW", 5))
    failures = sum(1 for s in history[: window - 1] if s in DOWN)
    if failures >= int(setting("MONITORING_DEGRADED_FAILURES", 2)):
        return CheckStatus.DEGRADED
    return CheckStatus.HEALTHY


def registry_health(status):
    return {CheckStatus.HEALTHY: Health.HEALTHY, CheckStatus.DEGRADED: Health.DEGRADED}.get(status, Health.UNHEALTHY)


def run_round(providers=None):
    """One health round. Returns a RoundResult (skipped if another round holds the lock)."""
    if providers is None:
        providers = list(ExternalIntegration.objects.active())
    specs = {p.pk: health_spec(p) for p in providers}
    longest = max((t for t, _ in specs.values()), default=0.0)
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=int(longest + ROUND_GRACE + 30)):
        log.info("health round skipped: the previous round is still running")
        return RoundResult(skipped=True, longest_timeout=longest)
    try:
        return _run(providers, specs, longest)
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def _run(providers, specs, longest):
    result = RoundResult(longest_timeout=longest, checked=len(providers))
    t0 = time.perf_counter()
    probes = {}
    if providers:
        pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(providers)), thread_name_prefix="health")
        # Threads wait at the gate until all are started: the main thread is not starved of the GIL
        # by early probes while it is still handing out work, and every probe starts together.
        gate = threading.Event()
        grace = min(ROUND_GRACE, max(0.2, 0.1 * longest))
        # Probes queued behind others (more providers than workers) get only what is left, and end
        # halfway through the grace at the latest: before the round stops waiting for them.
        ends_at = time.monotonic() + longest + grace / 2
        futures = {pool.submit(probe, p, gate, specs[p.pk][0], ends_at): p for p in providers}
        gate.set()
        # A probe that has not finished by then has already overrun its own timeout (a slow
        # connect plus a full read timeout, or a provider trickling bytes): it is an error now.
        deadline = longest + grace
        done, not_done = wait(futures, timeout=deadline)
        for future in done:
            p = future.result()
            probes[p.integration.pk] = p
        for future in not_done:
            provider = futures[future]
            future.cancel()
            probes[provider.pk] = Probe(
                provider, response_time=round(deadline * 1000, 2), error="No answer within the round's deadline."
            )
        if not_done:
            log.warning("health round: %d probe(s) outlived the round's deadline", len(not_done))
        # Every probe ended: let the idle workers go before returning, so that no thread of this
        # round outlives it. A probe that overran cannot be stopped; the round does not wait for it.
        pool.shutdown(wait=not not_done, cancel_futures=True)
    result.duration = time.perf_counter() - t0
    result.changes = record(providers, specs, probes, result)
    return result


def record(providers, specs, probes, result=None):
    """Store the checks, update the registry rows and write a StatusChange for every change."""
    now = timezone.now()
    ids = [p.pk for p in providers]
    history = defaultdict(list)
    window = int(setting("MONITORING_DEGRADED_WINDOW", 5))
    recent = (
        HealthCheck.objects.filter(integration_id__in=ids, checked_at__gte=now - timedelta(minutes=3 * window + 5))
        .order_by("-checked_at")
        .values_list("integration_id", "status")
    )
    for integration_id, status in recent:
        if len(history[integration_id]) < window:
            history[integration_id].append(status)

    checks, by_health, changes = [], defaultdict(list), []
    for provider in providers:
        p = probes[provider.pk]
        status = classify(p, specs[provider.pk][1], history[provider.pk])
        error = p.error
        if status == CheckStatus.DEGRADED and not error:
            error = (
                f"Slow: {p.response_time:.0f} ms > {specs[provider.pk][1]:.0f} ms"
                if p.response_time and p.response_time > specs[provider.pk][1]
                else "Failing part of the time."
            )
        checks.append(
            HealthCheck(integration=provider, status=status, response_time=p.response_time, error=error, checked_at=now)
        )
        health = registry_health(status)
        by_health[health].append(provider.pk)
        old = provider.health_status or ""
        if health != old and not (old == "" and health == Health.HEALTHY):
            changes.append(
                StatusChange(integration=provider, old_status=old, new_status=health, error=error, created_at=now)
            )
        provider.health_status, provider.last_health_check = health, now
        if result is not None:
            result.statuses[provider.name] = str(status)
    with transaction.atomic():
        HealthCheck.objects.bulk_create(checks, batch_size=500)
        for health, pks in by_health.items():
            ExternalIntegration.objects.filter(pk__in=pks).update(health_status=health, last_health_check=now)
        if changes:
            StatusChange.objects.bulk_create(changes)
    return len(changes)


def current_health(queryset=None):
    """The seed's `getAllServicesHealth`: every provider with its latest check."""
    queryset = queryset if queryset is not None else ExternalIntegration.objects.all()
    newest = HealthCheck.objects.filter(integration=OuterRef("pk")).order_by("-checked_at").values("pk")[:1]
    providers = list(queryset.annotate(latest_check=Subquery(newest)).order_by("kind", "priority", "display_name"))
    ids = [p.latest_check for p in providers if p.latest_check]
    latest = {c.integration_id: c for c in HealthCheck.objects.filter(pk__in=ids)} if ids else {}
    return [(p, latest.get(p.pk)) for p in providers]


def prune(days=None):
    """Delete health checks older than the retention (MONITORING_HEALTHCHECK_RETENTION_DAYS, default 30)."""
    days = int(days if days is not None else setting("MONITORING_HEALTHCHECK_RETENTION_DAYS", 30))
    deleted, _ = HealthCheck.objects.filter(checked_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
