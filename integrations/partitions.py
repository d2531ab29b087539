"""Monthly partitions of `integration_logs` on PostgreSQL; plain retention on other databases.

The table is created partitioned by RANGE (started_at) with a DEFAULT partition so that no log is
ever lost when a month was not created ahead; `ensure_partitions` moves any rows of a new month out
of the default partition before creating it.
"""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

TABLE = "integration_logs"


def month_start(day):
    return dt.date(day.year, day.month, 1)


def add_months(day, n):
    month = day.month - 1 + n
    return dt.date(day.year + month // 12, month % 12 + 1, 1)


def partition_name(month):
    return f"{TABLE}_y{month.year}m{month.month:02d}"


def is_partitioned():
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = %s", [TABLE]
        )
        return cur.fetchone() is not None


def existing_partitions():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s ORDER BY c.relname",
            [TABLE],
        )
        return [row[0] for row in cur.fetchall()]


def _say(report, message):
    if report is not None:
        report(message)


def ensure_partitions(ahead=3, today=None, report=None):
    """Create this month's and the next `ahead` months' partitions. Returns the names created.

    `report`, if given, is called with one readable line per action taken."""
    if not is_partitioned():
        return []
    today = today or timezone.localdate()
    have = set(existing_partitions())
    created = []
    for n in range(0, ahead + 1):
        start = add_months(month_start(today), n)
        name = partition_name(start)
        if name in have:
            continue
        end = add_months(start, 1)
        with transaction.atomic(), connection.cursor() as cur:
            # Rows that fell into the default partition for this month must move with it.
            cur.execute(
                f"CREATE TEMP TABLE _moving ON COMMIT DROP AS SELECT * FROM {TABLE}_default "
                "WHERE started_at >= %s AND started_at < %s",
                [start, end],
            )
            cur.execute(f"DELETE FROM {TABLE}_default WHERE started_at >= %s AND started_at < %s", [start, end])
            moved = cur.rowcount
            cur.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [start, end])
            cur.execute(f"INSERT INTO {TABLE} SELECT * FROM _moving")
            # ON COMMIT DROP alone is not enough: inside an outer transaction (a caller's atomic block,
            # a test) the next month's CREATE TEMP TABLE would find this one still there.
            cur.execute("DROP TABLE _moving")
        created.append(name)
        _say(report, _("created partition %(name)s") % {"name": name})
        if moved:
            _say(report, _("moved %(count)d log row(s) from the default partition into %(name)s")
                 % {"count": moved, "name": name})
    return created


def drop_expired(retention_months, today=None, report=None):
    """Drop partitions (PostgreSQL) or delete rows (elsewhere) older than the retention period.

    Returns the names of the dropped partitions (PostgreSQL) or the number of rows deleted (elsewhere);
    `report`, if given, is called with one readable line per action taken."""
    from .models import IntegrationLog

    today = today or timezone.localdate()
    cutoff = add_months(month_start(today), -retention_months)
    if not is_partitioned():
        cutoff_dt = timezone.make_aware(dt.datetime.combine(cutoff, dt.time.min))
        deleted = IntegrationLog.objects.filter(started_at__lt=cutoff_dt).delete()[0]
        if deleted:
            _say(report, _("deleted %(count)d log row(s) older than %(cutoff)s")
                 % {"count": deleted, "cutoff": cutoff.isoformat()})
        return deleted
    dropped = []
    for name in existing_partitions():
        if not name.startswith(f"{TABLE}_y"):
            continue
        year, month = int(name[-7:-3]), int(name[-2:])
        if add_months(dt.date(year, month, 1), 1) <= cutoff:
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE {name}")
            dropped.append(name)
            _say(report, _("dropped partition %(name)s") % {"name": name})
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {TABLE}_default WHERE started_at < %s", [cutoff])
        if cur.rowcount:
            _say(report, _("deleted %(count)d log row(s) older than %(cutoff)s from the default partition")
                 % {"count": cur.rowcount, "cutoff": cutoff.isoformat()})
    return dropped


CREATE_SQL = f"""
CREATE TABLE {TABLE} (
    id uuid NOT NULL,
    integration_id uuid NOT NULL REFERENCES external_integrations(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    request_id varchar(255) NOT NULL,
    endpoint varchar(500) NOT NULL,
    method varchar(10) NOT NULL CHECK (method IN ('GET','POST','PUT','DELETE','PATCH','HEAD','OPTIONS')),
    request_headers jsonb NULL,
    request_body text NOT NULL,
    response_status integer NULL,
    response_headers jsonb NULL,
    response_body text NOT NULL,
    request_duration numeric(10, 3) NULL,
    started_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone NULL,
    status varchar(20) NOT NULL CHECK (status IN ('success','error','timeout')),
    error_message text NOT NULL,
    error_code varchar(50) NOT NULL,
    ip_address inet NULL,
    user_agent text NOT NULL,
    user_id integer NULL REFERENCES auth_user(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);
CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT;
CREATE INDEX idx_integration_logs_integr ON {TABLE} (integration_id, started_at DESC);
CREATE INDEX idx_integration_logs_status ON {TABLE} (status, started_at DESC);
CREATE INDEX idx_integration_logs_req ON {TABLE} (request_id) WHERE request_id <> '';
CREATE INDEX integration_logs_user_idx ON {TABLE} (user_id);
"""
