"""Operators' screens: providers (sync, toggle, balance), services, orders (refresh, refill, cancel,
resolve orders under review) and refills. Every action goes through smm.providers, smm.catalogue or
smm.orders."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from integrations.admin import ActionPermissionsMixin, ExternalWriteAdminMixin
from integrations.admin_columns import clip, clipped, dated
from integrations.errors import ProviderError
from integrations.paging import FlatListAdminMixin, RecentValuesFilter

from . import catalogue, orders, providers
from .models import OrderStatus, SMMOrder, SMMProvider, SMMRefill, SMMService


def _run(modeladmin, request, queryset, func, done_message):
    ok = failed = 0
    for obj in queryset:
        try:
            func(obj)
            ok += 1
        except (ProviderError, ValidationError) as exc:
            failed += 1
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            modeladmin.message_user(request, f"{obj}: {text}", messages.ERROR)
    if ok:
        modeladmin.message_user(request, done_message % {"count": ok}, messages.SUCCESS)
    return ok, failed


@admin.register(SMMProvider)
class SMMProviderAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    # Short columns: the list fits 1,400 px (tests/integrations/test_admin_changelist_width.py).
    list_display = ["name_short", "owner_name", "code", "status", "balance_display", "low_balance", "services_short",
                    "synced_short", "success_rate_display", "average_response_time", "spent_short",
                    "completed_short"]
    list_filter = ["integration__status", "integration__code", "low_balance"]
    search_fields = ["integration__name", "integration__display_name", "integration__owner__username"]
    list_select_related = ["integration", "integration__owner"]
    readonly_fields = ["integration", "balance", "currency", "balance_checked_at", "low_balance", "services_count",
                       "last_sync_at", "last_sync_error", "total_orders", "completed_orders", "failed_orders",
                       "total_spent", "success_rate_display", "average_response_time", "created_at", "updated_at"]
    fields = ["integration", "low_balance_threshold", *readonly_fields[1:]]
    actions = ["sync_services", "toggle", "refresh_balance"]

    def has_add_permission(self, request):
        return False  # providers are added through the API or `initialize_default_smm_providers`

    name_short = clipped("integration.display_name", _("SMM provider"), 24, ordering="integration__display_name")
    synced_short = dated("last_sync_at", _("last service sync"), ordering="last_sync_at")

    @admin.display(description=_("owner"), ordering="integration__owner__username")
    def owner_name(self, obj):
        return clip(obj.integration.owner, 16)

    @admin.display(description=_("services"), ordering="services_count")
    def services_short(self, obj):
        return obj.services_count

    @admin.display(description=_("spent"), ordering="total_spent")
    def spent_short(self, obj):
        # Without the stored trailing zeros of five decimal places (and never in exponent notation).
        text = f"{obj.total_spent:f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    @admin.display(description=_("completed"), ordering="completed_orders")
    def completed_short(self, obj):
        return obj.completed_orders

    @admin.display(description=_("adapter"), ordering="integration__code")
    def code(self, obj):
        return obj.integration.code

    @admin.display(description=_("status"), ordering="integration__status")
    def status(self, obj):
        if not providers.has_api_key(obj):
            return _("%(status)s (no API key yet)") % {"status": obj.integration.get_status_display()}
        return obj.integration.get_status_display()

    @admin.display(description=_("balance"), ordering="balance")
    def balance_display(self, obj):
        return "—" if obj.balance is None else f"{obj.balance} {obj.currency}"

    @admin.display(description=_("success %"))
    def success_rate_display(self, obj):
        return "—" if obj.success_rate is None else obj.success_rate

    @admin.display(description=_("ms"), ordering="integration__average_response_time")
    def average_response_time(self, obj):
        return round(obj.integration.average_response_time)

    @admin.action(description=_("Sync services now"), permissions=["change"])
    def sync_services(self, request, queryset):
        _run(self, request, queryset.select_related("integration"), catalogue.sync_services,
             _("Services synced for %(count)d provider(s)."))

    @admin.action(description=_("Activate / deactivate"), permissions=["change"])
    def toggle(self, request, queryset):
        _run(self, request, queryset.select_related("integration"), providers.toggle_provider,
             _("%(count)d provider(s) switched."))

    @admin.action(description=_("Refresh balance"), permissions=["change"])
    def refresh_balance(self, request, queryset):
        _run(self, request, queryset.select_related("integration"), providers.refresh_balance,
             _("Balance refreshed for %(count)d provider(s)."))


@admin.register(SMMService)
class SMMServiceAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["service_id", "name_short", "provider_short", "category_short", "type_short", "rate",
                    "min_quantity", "max_quantity", "refill", "cancel", "is_active", "seen_short"]
    name_short = clipped("name", _("name"), 40, ordering="name")
    provider_short = clipped("provider", _("provider"), 20, ordering="provider__integration__display_name")
    category_short = clipped("category", _("category"), 24, ordering="category")
    type_short = clipped("type", _("type"), 16, ordering="type")
    seen_short = dated("last_seen_at", _("last seen"), ordering="last_seen_at")
    list_filter = ["is_active", "type", "refill", "cancel", "provider", "category"]
    search_fields = ["name", "category", "service_id"]
    list_select_related = ["provider__integration"]
    readonly_fields = [f.name for f in SMMService._meta.fields]

    def has_add_permission(self, request):
        return False  # the catalogue comes from the panel (sync)


class RefillInline(admin.TabularInline):
    model = SMMRefill
    extra = 0
    can_delete = False
    readonly_fields = ["external_refill_id", "status", "error", "last_checked_at", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class SMMOrderForm(forms.ModelForm):
    resolve_order_id = forms.CharField(
        label=_("Panel order id (resolve)"), required=False, max_length=64,
        help_text=_("For an order under review: the order id you found in the panel's own order history. "
                    "Leave empty if the panel has no such order, and use the “Resolve as failed” action."),
    )

    class Meta:
        model = SMMOrder
        fields = []

    def clean_resolve_order_id(self):
        value = self.cleaned_data["resolve_order_id"].strip()
        if value and self.instance.status != OrderStatus.UNKNOWN:
            raise forms.ValidationError(_("Only orders under review can be resolved."))
        return value


@admin.register(SMMOrder)
class SMMOrderAdmin(FlatListAdminMixin, ExternalWriteAdminMixin, ActionPermissionsMixin, admin.ModelAdmin):
    form = SMMOrderForm
    external_write = orders.submission  # "Resolve as sent" / "Resolve as failed" for orders under review
    # Short columns: the list fits 1,400 px (tests/integrations/test_admin_changelist_width.py).
    list_display = ["id", "owner_short", "provider_short", "service_short", "quantity", "status", "charge",
                    "remains", "panel_id_short", "created_at"]
    owner_short = clipped("owner", _("owner"), 16, ordering="owner__username")
    provider_short = clipped("provider", _("provider"), 20, ordering="provider__integration__display_name")
    panel_id_short = clipped("external_order_id", _("panel order id"), 14, ordering="external_order_id")
    # Service types seen in the newest orders: Django's own filter reads DISTINCT over every service.
    list_filter = ["status", "provider", RecentValuesFilter.of("service__type", _("service type")), "created_at"]
    search_fields = ["=id", "=external_order_id", "link", "owner__username", "idempotency_key"]
    list_select_related = ["owner", "provider__integration", "service"]
    date_hierarchy = "created_at"
    sortable_by = ["id", "created_at"]  # the orderings an index serves at a million rows (FlatListAdminMixin)
    readonly_fields = ["reference", "owner", "provider", "service", "external_order_id", "link", "quantity", "runs",
                       "interval", "extra", "status", "charge", "start_count", "remains", "currency", "error",
                       "attempts", "next_attempt_at", "idempotency_key", "cancel_requested_at", "submitted_at",
                       "completed_at", "last_checked_at", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": readonly_fields}),
        (_("Resolve an order under review"), {"fields": ["resolve_order_id"]}),
    ]
    inlines = [RefillInline]
    actions = ["refresh_status", "refill", "cancel", "resolve_as_sent", "resolve_as_failed"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("service"))
    def service_short(self, obj):
        return clip(f"{obj.service.service_id} · {obj.service.name}", 36)

    def save_model(self, request, obj, form, change):
        order_id = form.cleaned_data.get("resolve_order_id")
        if order_id:
            try:
                orders.resolve_unknown(obj, external_order_id=order_id, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, _("The order is resolved and will be polled from now on."))

    @admin.action(description=_("Refresh status from the panel"), permissions=["change"])
    def refresh_status(self, request, queryset):
        _run(self, request, queryset.select_related("provider__integration"), orders.refresh_order,
             _("%(count)d order(s) refreshed."))

    @admin.action(description=_("Request a refill"), permissions=["change"])
    def refill(self, request, queryset):
        _run(self, request, queryset.select_related("provider__integration", "service"), orders.refill_order,
             _("Refill requested for %(count)d order(s)."))

    @admin.action(description=_("Cancel at the panel"), permissions=["change"])
    def cancel(self, request, queryset):
        _run(self, request, queryset.select_related("provider__integration", "service"), orders.cancel_order,
             _("Cancel requested for %(count)d order(s)."))


@admin.register(SMMRefill)
class SMMRefillAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["id", "order_short", "refill_id_short", "status", "error_short", "created_at", "last_checked_at"]
    order_short = clipped("order", _("order"), 32, ordering="order_id")
    refill_id_short = clipped("external_refill_id", _("panel refill id"), 14, ordering="external_refill_id")
    error_short = clipped("error", _("error"), 40)
    list_filter = ["status", "created_at"]
    search_fields = ["=external_refill_id", "=order__id", "=order__external_order_id"]
    list_select_related = ["order__service"]
    readonly_fields = [f.name for f in SMMRefill._meta.fields]

    def has_add_permission(self, request):
        return False
