from django import template

register = template.Library()


@register.inclusion_tag("monitoring/dashboard.html", takes_context=True)
def monitoring_dashboard(context):
    from monitoring.dashboard import build

    request = context.get("request")
    data = build(user=getattr(request, "user", None))
    data["request"] = request
    return data


@register.simple_tag
def monitoring_refresh_seconds():
    from django.conf import settings

    return int(getattr(settings, "MONITORING_DASHBOARD_REFRESH_SECONDS", 60))
