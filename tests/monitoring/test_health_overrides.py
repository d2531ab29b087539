"""A provider row's own health URL and timeout (configuration `health_url`, `health_timeout_ms`), and
the round's deadline held whatever the probes do."""

import threading
import time

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from integrations.adapters import HealthCheck as HealthSpec
from integrations.adapters import row_health
from integrations.models import ExternalIntegration, IntegrationLog
from integrations.sandbox import clear_fault, set_fault
from monitoring import health
from monitoring.models import CheckStatus, HealthCheck

from .conftest import script


def misconfigured():
    """The start of a misconfigured check's error, as the probe threads write it (in the default
    language: no request activates another one there)."""
    with translation.override(settings.LANGUAGE_CODE):
        return gettext("The health check is misconfigured: %s").split("%s")[0]


def health_threads():
    return [t for t in threading.enumerate() if t.name.startswith("health")]


@pytest.fixture
def faults():
    set_names = []

    def set_(code, **spec):
        set_names.append(code)
        set_fault("generic", code, **spec)

    yield set_
    for code in set_names:
        clear_fault("generic", code)


@pytest.mark.django_db(transaction=True)
def test_the_rows_health_url_is_what_gets_probed(make_provider, live_server, faults):
    # The API's host is down, the health URL (on another host in the seed: Almadar) answers.
    faults("almadar-sms", status=503)
    almadar = make_provider(
        code="probe", name="almadar", base_url=f"{live_server.url}/sandbox/generic/almadar-sms/",
        configuration={"health_url": f"{live_server.url}/sandbox/generic/almadar-api/health"},
    )
    # And the other way round: the API's host answers, its health URL does not.
    faults("amyal-health", status=503)
    amyal = make_provider(
        code="probe", name="amyal", base_url=f"{live_server.url}/sandbox/generic/amyal-api/",
        configuration={"health_url": f"{live_server.url}/sandbox/generic/amyal-health/health"},
    )
    health.run_round()
    checks = {c.integration_id: c for c in HealthCheck.objects.all()}
    assert checks[almadar.pk].status == CheckStatus.HEALTHY
    assert checks[amyal.pk].status == CheckStatus.UNHEALTHY and "503" in checks[amyal.pk].error
    endpoints = set(IntegrationLog.objects.values_list("endpoint", flat=True))
    assert endpoints == {
        f"{live_server.url}/sandbox/generic/almadar-api/health",
        f"{live_server.url}/sandbox/generic/amyal-health/health",
    }


@pytest.mark.django_db(transaction=True)
def test_the_rows_health_timeout_bounds_the_probe_and_the_round(make_provider, live_server, faults):
    faults("slow", hang_s=2)
    make_provider(code="probe", name="slow", base_url=f"{live_server.url}/sandbox/generic/slow/",
                  configuration={"health_timeout_ms": 300})
    t0 = time.perf_counter()
    result = health.run_round()
    elapsed = time.perf_counter() - t0
    assert result.longest_timeout == 0.3  # not the adapter's 1.0 s
    assert elapsed < 0.9, elapsed
    check = HealthCheck.objects.get()
    assert check.status == CheckStatus.ERROR and "0.3" in check.error


def test_the_seeds_health_table_is_expressible_per_row():
    seed = {
        "moamalat": ("https://api.moamalat.ly/health", 5000),
        "amyal": ("https://api.amyal.ly/health", 3000),
        "almadar": ("https://api.almadar.ly/health", 2000),
    }
    for url, ms in seed.values():
        spec = row_health(HealthSpec(), {"health_url": url, "health_timeout_ms": ms})
        assert (spec.path, spec.timeout, spec.expected_status) == (url, ms / 1000, 200)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "configuration",
    [
        {"health_url": "https://user:pw@api.moamalat.ly/health"},  # credentials in the URL
        {"health_url": "ftp://api.moamalat.ly/health"},
        {"health_url": "/health"},  # not absolute
        {"health_url": "https://api.moamalat.ly\\@evil.example/health"},
        {"health_timeout_ms": 0},
        {"health_timeout_ms": "soon"},
    ],
)
def test_an_unusable_override_is_the_checks_error_never_a_crash_of_the_round(make_provider, configuration):
    make_provider(code="probe", configuration=configuration)
    make_provider()  # another provider in the same round
    result = health.run_round()
    assert result.checked == 2
    statuses = sorted(HealthCheck.objects.values_list("status", "error"))
    assert statuses[0][0] == CheckStatus.ERROR and statuses[0][1].startswith(misconfigured())
    assert all(key in statuses[0][1] for key in configuration)  # the key at fault is named
    assert statuses[1][0] == CheckStatus.HEALTHY


@pytest.mark.django_db
def test_a_private_health_url_is_refused_when_private_addresses_are_not_allowed(make_provider, settings):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    make_provider(code="probe", base_url="https://api.moamalat.ly/",
                  configuration={"health_url": "http://127.0.0.1:9/health"})
    health.run_round()
    check = HealthCheck.objects.get()
    assert check.status == CheckStatus.ERROR and check.error.startswith(f"{misconfigured()}health_url:")
    assert not IntegrationLog.objects.exists()  # nothing was sent
    with pytest.raises(ValidationError, match="private"), translation.override("en"):
        row_health(HealthSpec(), {"health_url": "http://127.0.0.1:9/health"})


@pytest.mark.django_db
def test_the_admin_edits_the_overrides_in_the_configuration_and_refuses_bad_ones(make_provider, staff):
    provider = make_provider(code="probe", name="moamalat")
    client = Client()
    client.force_login(staff)
    url = f"/admin/integrations/externalintegration/{provider.pk}/change/"
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "health_url" in page and "health_timeout_ms" in page  # the help text names them
    form = {
        "kind": provider.kind, "code": "probe", "name": "moamalat", "display_name": "Moamalat", "owner": "",
        "base_url": "http://127.0.0.1:9/", "priority": 1, "status": "active", "credentials_json": "{}",
    }
    refused = client.post(url, {**form, "configuration": '{"health_url": "ftp://api.moamalat.ly/health"}'},
                          HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200 and "health_url" in refused.content.decode()
    ok = client.post(url, {**form, "configuration": '{"health_url": "http://127.0.0.1:9/health", '
                                                    '"health_timeout_ms": 5000}'})
    assert ok.status_code == 302
    provider.refresh_from_db()
    assert provider.configuration == {"health_url": "http://127.0.0.1:9/health", "health_timeout_ms": 5000}
    assert health.health_spec(provider)[0] == 5.0


@pytest.mark.django_db
def test_the_round_ends_at_its_own_deadline_when_a_probe_ignores_its_timeout(make_provider):
    """A probe that hangs past the round's deadline, and whose own timeout does not end it (a blocked
    adapter): the round stops waiting at its deadline and records an error."""
    stuck = make_provider()
    script(stuck, sleep_s=3)  # the scripted adapter's timeout (1 s) does not interrupt a sleep
    fine = make_provider()
    t0 = time.perf_counter()
    result = health.run_round()
    elapsed = time.perf_counter() - t0
    try:
        assert result.longest_timeout == 1.0
        assert elapsed < 1.6, elapsed  # the deadline: 1 s + 0.2 s of grace, not the probe's 3 s
        checks = {c.integration_id: c for c in HealthCheck.objects.all()}
        assert checks[stuck.pk].status == CheckStatus.ERROR
        assert "deadline" in checks[stuck.pk].error
        assert checks[fine.pk].status == CheckStatus.HEALTHY
    finally:
        for thread in health_threads():
            thread.join(timeout=5)


@pytest.mark.django_db
def test_no_probe_thread_outlives_a_round_whose_probes_all_ended(make_provider):
    for _ in range(5):
        script(make_provider(), sleep_s=0.1)
    health.run_round()
    assert health_threads() == []
    assert ExternalIntegration.objects.filter(health_status="healthy").count() == 5
