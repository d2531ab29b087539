"""What the operators' dashboard (the admin index) shows, computed in a handful of queries.

Response-time sparklines are drawn server-side as inline SVG: no JavaScript, no CDN, nothing to
vendor, and they render the same in every browser and in a screenshot.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from integrations.domain import domain_configs
from integrations.models import ExternalIntegration, IntegrationLog, Kind
from integrations.permissions import holds_model_permission, holds_permission

from .models import CheckStatus, FallbackActivation, Incident, StatusChange

log = logging.getLogger(__name__)

COLOURS = {
    "healthy": "#1a7f37",
    "degraded": "#b7791f",
    "unhealthy": "#cf222e",
    "unknown": "#6e7781",
}
SPARK_W, SPARK_H, HOURS = 120, 28, 24


def sparkline(buckets, now, status):
    """An inline SVG of hourly average response times (ms) over the last 24 hours.

    `buckets` maps an hour (aware datetime) to (average ms, failures). Failed hours get a red dot.
    """
    start = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    values = []
    for i in range(HOURS):
        hour = start + timedelta(hours=i)
        values.append(buckets.get(hour))
    peak = max((v[0] or 0 for v in values if v), default=0) or 1
    step = SPARK_W / (HOURS - 1)
    points, dots = [], []
    for i, v in enumerate(values):
        if not v:
            continue
        x = round(i * step, 1)
        y = round(SPARK_H - 2 - (v[0] or 0) / peak * (SPARK_H - 4), 1)
        points.append(f"{x},{y}")
        if v[1]:
            dots.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{COLOURS["unhealthy"]}"/>')
    colour = COLOURS.get(status, COLOURS["unknown"])
    label = _("Response time, last 24 hours (peak %(peak)d ms)") % {"peak": peak}
    if not points:
        body = (
            f'<line x1="0" y1="{SPARK_H - 2}" x2="{SPARK_W}" y2="{SPARK_H - 2}" '
            'stroke="#d0d7de" stroke-dasharray="2,2"/>'
        )
    else:
        body = f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"/>'
        if len(points) == 1:  # one hour of data: a point, not an invisible line
            x, y = points[0].split(",")
            body += f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>'
        body += "".join(dots)
    # Numbers and fixed colours only; the label is escaped by format_html.
    return format_html(
        '<svg class="spark" dir="ltr" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        SPARK_W,
        SPARK_H,
        SPARK_W,
        SPARK_H,
        label,
        label,
        mark_safe(body),  # noqa: S308 - built above from numbers and constants only
    )


def figure_blocks(since, user=None):
    """Every domain app's dashboard figures (its `dashboard_figures` declaration) for the period from
    `since`, of the apps whose `get_dashboard_permission()` `user` holds (None: every app). One app's
    failure costs only its own boxes, never the dashboard (nor, in a savepoint, the transaction the
    page runs in)."""
    blocks = []
    for config in domain_configs():
        if user is not None and not may_see_figures(user, config):
            continue  # its queries are not even run
        try:
            with transaction.atomic():
                blocks.extend(config.dashboard_figures(since) or ())
        except Exception:
            log.exception("%s.dashboard_figures failed", config.label)
    return blocks


def may_see_figures(user, config):
    """A domain's figures summarise its rows: shown to whoever may view them (superusers always)."""
    if user.is_active and user.is_superuser:
        return True
    perm = config.get_dashboard_permission()
    return perm is not None and holds_permission(user, perm)


def sections_for(user):
    """Which parts of the dashboard `user` may see: the same model permissions as the admin's lists
    of the rows behind them (None: everything, for callers that are not a request)."""
    if user is None:
        return {"health": True, "incidents": True}
    from .models import HealthCheck

    return {
        "health": holds_model_permission(user, ExternalIntegration, "view")
        and holds_model_permission(user, HealthCheck, "view"),
        "incidents": holds_model_permission(user, Incident, "view"),
    }


def build(now=None, user=None):
    """The dashboard's data as `user` may see it (see `sections_for`); what they may not see is
    neither shown nor queried."""
    now = now or timezone.now()
    day_ago, hour_ago = now - timedelta(hours=HOURS), now - timedelta(hours=1)
    sections = sections_for(user)
    providers = (
        list(ExternalIntegration.objects.select_related("owner").order_by("kind", "priority", "display_name"))
        if sections["health"] else []
    )

    from .models import HealthCheck

    buckets = defaultdict(dict)
    hourly = (
        HealthCheck.objects.filter(checked_at__gte=day_ago)
        .annotate(hour=TruncHour("checked_at"))
        .values("integration_id", "hour")
        .annotate(avg=Avg("response_time"), failures=Count("pk", filter=~Q(status__in=["healthy", "degraded"])))
        .order_by()
        if sections["health"] else ()
    )
    for row in hourly:
        hour = row["hour"]
        if timezone.is_naive(hour):
            hour = timezone.make_aware(hour, timezone.get_current_timezone())
        buckets[row["integration_id"]][hour.astimezone(timezone.get_current_timezone())] = (
            row["avg"],
            row["failures"],
        )
    # Buckets are keyed in the current time zone, as TruncHour produces them.
    local_now = timezone.localtime(now)

    last_hour = {
        row["integration_id"]: row
        for row in IntegrationLog.objects.filter(started_at__gte=hour_ago)
        .values("integration_id")
        .annotate(total=Count("pk"), failed=Count("pk", filter=~Q(status=IntegrationLog.Outcome.SUCCESS)))
        .order_by()
    } if sections["health"] else {}
    active_fallbacks = (
        {a.integration_id: a for a in FallbackActivation.objects.filter(deactivated_at=None)}
        if sections["health"] else {}
    )
    open_incidents = list(
        Incident.objects.filter(resolved_at=None)
        .select_related("integration", "acknowledged_by")
        .order_by("-started_at")[:20]
    ) if sections["incidents"] else []
    incident_by_provider = {i.integration_id: i for i in open_incidents}

    groups, counts = defaultdict(list), defaultdict(int)
    for p in providers:
        status = p.health_status or "unknown"
        if p.status != "active":
            status_label = p.get_status_display()
        else:
            status_label = p.get_health_status_display() if p.health_status else _("Not checked yet")
        if p.status == "active":
            counts[status] += 1
        hour = last_hour.get(p.pk)
        groups[p.kind].append(
            {
                "provider": p,
                "status": status,
                "status_label": status_label,
                "active": p.status == "active",
                "spark": sparkline(buckets.get(p.pk, {}), local_now, status),
                "success_rate": p.success_rate,
                "hour_total": hour["total"] if hour else 0,
                "hour_failed": hour["failed"] if hour else 0,
                "hour_rate": round(100 * hour["failed"] / hour["total"], 1) if hour and hour["total"] else None,
                "fallback": active_fallbacks.get(p.pk),
                "incident": incident_by_provider.get(p.pk),
            }
        )
    kinds = dict(Kind.choices)
    hour_totals = [sum(r["total"] for r in last_hour.values()), sum(r["failed"] for r in last_hour.values())]
    return {
        "generated_at": now,
        "groups": [(kinds.get(kind, kind), rows) for kind, rows in groups.items()],
        "counts": {k: counts.get(k, 0) for k in ("healthy", "degraded", "unhealthy", "unknown")},
        "provider_count": len(providers),
        "open_incidents": open_incidents,
        "recent_changes": (
            list(StatusChange.objects.select_related("integration").order_by("-created_at")[:15])
            if sections["health"] else []
        ),
        "show_health": sections["health"],
        "show_incidents": sections["incidents"],
        "hour_total": hour_totals[0],
        "hour_failed": hour_totals[1],
        "hour_rate": round(100 * hour_totals[1] / hour_totals[0], 1) if hour_totals[0] else None,
        "figure_blocks": figure_blocks(day_ago, user),
        "refresh_seconds": int(getattr(settings, "MONITORING_DASHBOARD_REFRESH_SECONDS", 60)),
        "colours": COLOURS,
        "check_statuses": CheckStatus,
    }


# The provider registry's labels shown on the dashboard, so that this app's catalogue translates
# them even before the integrations app ships its own.
_REGISTRY_LABELS = (
    gettext_noop("Payment"),
    gettext_noop("Shipping"),
    gettext_noop("Telecom (SMS)"),
    gettext_noop("E-mail"),
    gettext_noop("Maps"),
    gettext_noop("Address verification"),
    gettext_noop("Identity verification"),
    gettext_noop("Analytics"),
    gettext_noop("Storage"),
    gettext_noop("SMM panel"),
    gettext_noop("Active"),
    gettext_noop("Inactive"),
    gettext_noop("Maintenance"),
)
