"""IntegrationLog partitions (PostgreSQL) and retention (every database)."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone, translation

from integrations import partitions
from integrations.models import IntegrationLog
from integrations.tasks import maintain_log_partitions

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")
not_postgres = pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL drops partitions instead")


def at(year, month, day=15, hour=12):
    return timezone.make_aware(dt.datetime(year, month, day, hour))


def log(provider, started_at, endpoint="health"):
    return IntegrationLog.objects.create(integration=provider, endpoint=endpoint, method="GET", started_at=started_at)


def run(*args):
    out = io.StringIO()
    with translation.override("en"):
        call_command("manage_log_partitions", *args, stdout=out)
    return [line for line in out.getvalue().splitlines() if line.strip()]


def holder(log_row):
    """The partition a row physically lives in."""
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM integration_logs WHERE id = %s", [log_row.pk])
        return cur.fetchone()[0]


def bounds(name):
    with connection.cursor() as cur:
        cur.execute("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", [name])
        return cur.fetchone()[0]


@postgres_only
@pytest.mark.django_db
def test_the_log_table_is_range_partitioned_by_month_on_started_at():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = ANY(p.partattrs::int2[]) "
            "WHERE c.relname = 'integration_logs'"
        )
        assert cur.fetchall() == [("r", "started_at")]
    assert partitions.is_partitioned()
    names = partitions.existing_partitions()
    assert "integration_logs_default" in names
    this_month = partitions.month_start(timezone.localdate())
    current = partitions.partition_name(this_month)
    assert current in names  # migrate created this month's partition and the next ones
    bound = bounds(current)
    assert this_month.isoformat() in bound and partitions.add_months(this_month, 1).isoformat() in bound
    assert bounds("integration_logs_default") == "DEFAULT"


@postgres_only
def test_a_row_lands_in_its_months_partition(make_provider):
    row = log(make_provider(), timezone.now())
    assert holder(row) == partitions.partition_name(partitions.month_start(timezone.localdate()))


@postgres_only
def test_the_command_creates_the_coming_months_partitions(db):
    today = timezone.localdate()
    wanted = [partitions.partition_name(partitions.add_months(partitions.month_start(today), n)) for n in range(6)]
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE {wanted[1]}")  # next month's, so that there is one to create for sure
    before = set(partitions.existing_partitions())
    lines = run("--ahead", "5")
    after = set(partitions.existing_partitions())
    assert set(wanted) <= after
    created = sorted(after - before)
    assert wanted[1] in created and wanted[5] in created
    for name in created:
        assert f"created partition {name}" in lines
    assert len(lines) == len(created)  # one line per action, nothing else (nothing is past retention)
    assert run("--ahead", "5") == ["nothing to do: partitions are in place and no log is past retention"]


@postgres_only
def test_a_row_without_a_partition_goes_to_default_and_moves_when_its_month_is_created(make_provider):
    provider = make_provider()
    march, april = log(provider, at(2040, 3, 5), "march"), log(provider, at(2040, 4, 1, 3), "april")
    assert holder(march) == holder(april) == "integration_logs_default"
    lines = []
    created = partitions.ensure_partitions(ahead=1, today=dt.date(2040, 3, 20), report=lines.append)
    assert created == ["integration_logs_y2040m03", "integration_logs_y2040m04"]
    assert holder(march) == "integration_logs_y2040m03"
    assert holder(april) == "integration_logs_y2040m04"
    assert IntegrationLog.objects.filter(integration=provider).count() == 2
    moved = IntegrationLog.objects.get(pk=march.pk)
    assert (moved.endpoint, moved.started_at, moved.integration_id) == ("march", at(2040, 3, 5), provider.pk)
    with translation.override("en"):
        assert len(lines) == 4  # two partitions created, one row moved into each
    # Running it again is a no-op.
    assert partitions.ensure_partitions(ahead=1, today=dt.date(2040, 3, 20)) == []


@postgres_only
def test_retention_drops_old_partitions_and_keeps_recent_ones(make_provider):
    provider = make_provider()
    partitions.ensure_partitions(ahead=2, today=dt.date(2001, 1, 10))
    old = [log(provider, at(2001, m)) for m in (1, 2, 3)]
    stray = log(provider, at(1999, 6))  # an old month that never had a partition: in the default one
    recent = log(provider, timezone.now())
    last_kept = partitions.add_months(partitions.month_start(timezone.localdate()), -6)
    kept_old = log(provider, at(last_kept.year, last_kept.month, 2))  # inside the retention period
    assert holder(stray) == "integration_logs_default"
    # In production the rows were committed long ago; here the deferred foreign-key checks of this
    # transaction must run before PostgreSQL lets their partition go.
    connection.check_constraints()

    lines = run("--retention-months", "6", "--ahead", "0")

    names = set(partitions.existing_partitions())
    assert not {"integration_logs_y2001m01", "integration_logs_y2001m02", "integration_logs_y2001m03"} & names
    assert partitions.partition_name(partitions.month_start(timezone.localdate())) in names
    remaining = set(IntegrationLog.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, kept_old.pk}
    assert not {row.pk for row in old} & remaining
    assert "dropped partition integration_logs_y2001m01" in lines
    assert any(line.startswith("deleted 1 log row(s)") and "default partition" in line for line in lines)
    assert all("\n" not in line for line in lines)


@postgres_only
def test_the_task_creates_and_drops(make_provider, settings):
    settings.INTEGRATION_LOG_PARTITIONS_AHEAD = 4
    settings.INTEGRATION_LOG_RETENTION_MONTHS = 3
    partitions.ensure_partitions(ahead=0, today=dt.date(2002, 5, 1))
    target = partitions.partition_name(partitions.add_months(partitions.month_start(timezone.localdate()), 4))
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {target}")
    result = maintain_log_partitions.delay().get()
    assert target in result["created"]
    assert result["dropped"] == ["integration_logs_y2002m05"]
    assert target in partitions.existing_partitions()


@not_postgres
def test_retention_deletes_old_rows_and_keeps_recent_ones(make_provider):
    provider = make_provider()
    old = [log(provider, at(2001, m)) for m in (1, 2)]
    recent = log(provider, timezone.now())
    last_kept = partitions.add_months(partitions.month_start(timezone.localdate()), -6)
    kept_old = log(provider, timezone.make_aware(dt.datetime.combine(last_kept, dt.time.min)))
    just_expired = log(provider, timezone.make_aware(dt.datetime.combine(last_kept, dt.time.min)) - dt.timedelta(
        seconds=1))
    lines = run("--retention-months", "6")
    remaining = set(IntegrationLog.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, kept_old.pk}
    assert not {row.pk for row in [*old, just_expired]} & remaining
    assert lines[0].startswith("integration_logs is not partitioned")
    assert lines[1].startswith("deleted 3 log row(s) older than ")
    assert len(lines) == 2
    assert run("--retention-months", "6")[1].startswith("nothing to do")


@not_postgres
def test_the_task_deletes_expired_rows(make_provider, settings):
    settings.INTEGRATION_LOG_RETENTION_MONTHS = 2
    provider = make_provider()
    log(provider, at(2001, 1))
    recent = log(provider, timezone.now())
    assert maintain_log_partitions.delay().get() == {"created": [], "dropped": 1}
    assert list(IntegrationLog.objects.values_list("pk", flat=True)) == [recent.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ahead", "-1"], "--ahead must be 0 or more, not -1."),
        (["--retention-months", "0"], "--retention-months must be 1 or more, not 0."),
        (["--retention-months", "-3"], "--retention-months must be 1 or more, not -3."),
    ],
)
def test_bad_arguments_are_refused_with_one_line(make_provider, args, message):
    provider = make_provider()
    row = log(provider, at(2001, 1))
    with translation.override("en"), pytest.raises(CommandError) as info:
        call_command("manage_log_partitions", *args, stdout=io.StringIO())
    assert str(info.value) == message
    assert IntegrationLog.objects.filter(pk=row.pk).exists()  # nothing was done


def test_a_non_number_is_refused_by_the_parser(db):
    with pytest.raises(CommandError, match="invalid int value"):
        call_command("manage_log_partitions", "--ahead", "many", stdout=io.StringIO())
