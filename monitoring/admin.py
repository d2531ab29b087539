from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.admin import ActionPermissionsMixin

from . import alerts
from .models import (
    AlertDelivery,
    AlertRoute,
    FallbackActivation,
    HealthCheck,
    Incident,
    Notification,
    StatusChange,
    SupportTicket,
)


class ReadOnlyAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    """Rows written by the monitoring itself: operators read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HealthCheck)
class HealthCheckAdmin(ReadOnlyAdmin):
    list_display = ["integration", "status", "response_time", "error", "checked_at"]
    list_filter = ["status", "integration__kind", "checked_at"]
    search_fields = ["integration__display_name", "integration__name", "error"]
    date_hierarchy = "checked_at"
    list_select_related = ["integration"]


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["integration", "old_status", "new_status", "created_at", "processed_at", "alerts_suppressed"]
    list_filter = ["new_status", "alerts_suppressed", "integration__kind"]
    search_fields = ["integration__display_name", "error"]
    list_select_related = ["integration"]


class AlertInline(admin.TabularInline):
    model = AlertDelivery
    fields = ["channel", "severity", "outcome", "recipients", "error", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["integration", "severity", "state", "started_at", "acknowledged_by", "resolved_at"]
    list_filter = ["state", "severity", "integration__kind"]
    search_fields = ["integration__display_name", "description", "notes"]
    readonly_fields = [
        "integration",
        "severity",
        "state",
        "description",
        "started_at",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_at",
    ]
    fields = [*readonly_fields, "notes"]
    actions = ["acknowledge", "resolve"]
    inlines = [AlertInline]
    list_select_related = ["integration", "acknowledged_by"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Acknowledge the selected incidents"), permissions=["change"])
    def acknowledge(self, request, queryset):
        done = sum(incident.acknowledge(request.user) for incident in queryset)
        self.message_user(
            request,
            ngettext("%d incident acknowledged.", "%d incidents acknowledged.", done) % done,
            messages.SUCCESS,
        )

    @admin.action(description=_("Resolve the selected incidents by hand"), permissions=["change"])
    def resolve(self, request, queryset):
        done = sum(alerts.resolve(incident) for incident in queryset)
        self.message_user(
            request, ngettext("%d incident resolved.", "%d incidents resolved.", done) % done, messages.SUCCESS
        )

    def save_model(self, request, obj, form, change):
        # Annotating an open incident acknowledges it: someone is on it.
        super().save_model(request, obj, form, change)
        if change and "notes" in form.changed_data and obj.state == Incident.State.OPEN:
            obj.acknowledge(request.user)


@admin.register(AlertRoute)
class AlertRouteAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["channel", "min_severity", "enabled", "recipients"]
    list_editable = ["min_severity", "enabled"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["subject", "channel", "severity", "outcome", "recipients", "created_at"]
    list_filter = ["channel", "outcome", "severity"]
    search_fields = ["subject", "error"]
    date_hierarchy = "created_at"


@admin.register(SupportTicket)
class SupportTicketAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["__str__", "priority", "state", "assignee", "incident", "created_at", "closed_at"]
    list_filter = ["state", "priority"]
    search_fields = ["subject", "body"]
    list_editable = ["state", "assignee"]
    readonly_fields = ["incident", "created_at", "closed_at"]

    def save_model(self, request, obj, form, change):
        if obj.state == SupportTicket.State.CLOSED and not obj.closed_at:
            obj.closed_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(FallbackActivation)
class FallbackActivationAdmin(ReadOnlyAdmin):
    list_display = ["integration", "code", "alternatives", "activated_at", "deactivated_at", "reason"]
    list_filter = ["code"]
    list_select_related = ["integration"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["title", "user", "integration", "created_at", "emailed_at", "read_at"]
    search_fields = ["title", "user__username", "user__email"]
    list_select_related = ["user", "integration"]
