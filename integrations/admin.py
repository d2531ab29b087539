import functools
import json
from importlib import import_module

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .adapters import HealthCheck, UnknownAdapter, adapter_class, code_choices, row_health
from .admin_columns import clipped, dated
from .models import ExternalIntegration, Fallback, IntegrationLog, StateTransition, Status, WebhookEvent
from .paging import FlatListAdminMixin, RecentValuesFilter
from .permissions import KEEP_CREDENTIALS_ON_URL_CHANGE

MASK_PREFIX = "••••••"


class ActionPermissionsMixin:
    """For every ModelAdmin of the hub: an action the user may not run is refused with a message.

    Each action declares the permissions it needs (`@admin.action(permissions=[...])`), so Django
    neither offers it nor dispatches it to a user without them. A forced POST of it would otherwise
    get "No action selected", or nothing at all when the user has no action left: say plainly why
    nothing happened."""

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            refused = self._refused_actions(request)
            if refused:
                self.message_user(request, refused_action_message(self, refused[0]), messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def _refused_actions(self, request):
        declared = {name: description for _func, name, description in self._get_base_actions()}
        posted = [name for name in request.POST.getlist("action") if name in declared]
        if not posted:
            return []
        allowed = self.get_actions(request)
        return [declared[name] for name in posted if name not in allowed]


def refused_action_message(modeladmin, description):
    return gettext("You may not run “%(action)s” on %(objects)s: you do not have the permission it needs.") % {
        "action": str(description) % admin.utils.model_format_dict(modeladmin.opts),
        "objects": modeladmin.opts.verbose_name_plural,
    }


def mask(value):
    text = str(value)
    return MASK_PREFIX + text[-4:] if len(text) > 8 else MASK_PREFIX


def public_names(code):
    """Credential names the adapter declares not secret (a username…): the only values shown in full.

    Everything else is masked, including keys the adapter does not declare and every value of a row
    whose adapter is no longer registered: an unknown value is treated as a secret."""
    try:
        return {f.name for f in adapter_class(code).meta.credentials if not f.secret}
    except UnknownAdapter:
        return set()


CONFIGURATION_HELP = _(
    "JSON object. Keys read by the hub: timeout (seconds of each call), retries, backoff, "
    "circuit_breaker_threshold, circuit_breaker_cooldown; health_url (an absolute URL to probe instead of "
    "the adapter's own check, e.g. https://api.moamalat.ly/health), health_timeout_ms (the probe's timeout, "
    "e.g. 5000), degraded_after_ms (slower checks are degraded)."
)

KEY_NEEDED_FOR_NEW_URL = _(
    "Changing the URL would send the stored credentials to the new address: enter them again (replace "
    "every masked value), or leave the URL as it was."
)


class CredentialsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6, "cols": 60, "dir": "ltr", "style": "font-family: monospace"})


class IntegrationForm(forms.ModelForm):
    """Credentials are edited as JSON with secret values masked: a masked value left as it is keeps
    the stored secret, so an operator can change one key without ever seeing the others."""

    credentials_json = CredentialsField(
        label=_("Credentials"),
        required=False,
        help_text=_("JSON object. Secret values are shown masked; leave a masked value unchanged to keep it."),
    )

    # Set per request by the ModelAdmin: whether the user holds KEEP_CREDENTIALS_ON_URL_CHANGE.
    may_keep_credentials_on_url_change = False

    class Meta:
        model = ExternalIntegration
        fields = ["kind", "code", "name", "display_name", "owner", "base_url", "priority", "status", "configuration"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].widget = forms.Select(choices=[("", "---------"), *code_choices()])
        if "configuration" in self.fields:
            self.fields["configuration"].help_text = CONFIGURATION_HELP
        stored = self.instance.credentials if self.instance.pk else {}
        public = public_names(self.instance.code) if self.instance.pk else set()
        shown = {k: (v if (k in public or v in (None, "")) else mask(v)) for k, v in (stored or {}).items()}
        self.initial["credentials_json"] = json.dumps(shown, ensure_ascii=False, indent=2) if shown else "{}"

    def clean_configuration(self):
        value = self.cleaned_data.get("configuration")
        if value and not isinstance(value, dict):
            raise forms.ValidationError(_("The configuration must be a JSON object."))
        row_health(HealthCheck(), value)  # health_url is checked like the provider's URL
        return value

    def clean_credentials_json(self):
        raw = self.cleaned_data.get("credentials_json") or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("Credentials must be valid JSON: %s") % exc) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Credentials must be a JSON object."))
        stored = (self.instance.credentials if self.instance.pk else {}) or {}
        self.kept_credentials = []
        for key, item in list(value.items()):
            if isinstance(item, str) and item.startswith(MASK_PREFIX) and key in stored:
                value[key] = stored[key]
                self.kept_credentials.append(key)
        return value

    def clean(self):
        cleaned = super().clean()
        # A new URL with the stored secrets kept would send them to whatever address was typed in:
        # whoever changes the URL enters them again, unless trusted to keep them (the permission).
        if (
            self.instance.pk
            and "base_url" in self.changed_data
            and getattr(self, "kept_credentials", None)
            and not self.may_keep_credentials_on_url_change
        ):
            self.add_error("base_url", forms.ValidationError(KEY_NEEDED_FOR_NEW_URL, code="credentials_needed"))
        return cleaned

    def _post_clean(self):
        self.instance.credentials = self.cleaned_data.get("credentials_json", self.instance.credentials)
        super()._post_clean()

    def _update_errors(self, errors):
        # The model reports credential problems under `credentials`, which this form edits as
        # `credentials_json`: Django would raise ValueError (a 500) for an error on a field the form
        # does not have. Show them on the JSON field, unless that already says the JSON is invalid.
        if hasattr(errors, "error_dict") and "credentials" in errors.error_dict:
            error_dict = dict(errors.error_dict)
            moved = error_dict.pop("credentials")
            if "credentials_json" not in self._errors:
                error_dict["credentials_json"] = moved
            if not error_dict:
                return
            errors = forms.ValidationError(error_dict)
        super()._update_errors(errors)


@admin.register(ExternalIntegration)
class ExternalIntegrationAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    form = IntegrationForm
    # Short columns: the list fits 1,400 px (tests/integrations/test_admin_changelist_width.py).
    list_display = [
        "name_short",
        "kind",
        "code",
        "owner_short",
        "status",
        "health_badge",
        "priority",
        "requests_short",
        "success_rate_display",
        "response_time_short",
        "checked_short",
    ]
    list_filter = ["kind", "status", "health_status", ("owner", admin.EmptyFieldListFilter)]
    search_fields = ["name", "display_name", "code", "base_url", "owner__username"]
    readonly_fields = [
        "health_status",
        "last_health_check",
        "total_requests",
        "successful_requests",
        "failed_requests",
        "average_response_time",
        "created_at",
        "updated_at",
        "created_by",
    ]
    fieldsets = [
        (None, {"fields": ["kind", "code", "name", "display_name", "owner", "base_url", "priority", "status"]}),
        (_("Configuration and credentials"), {"fields": ["configuration", "credentials_json"]}),
        (_("Health and counters"), {"fields": readonly_fields}),
    ]
    actions = ["enable", "disable", "maintenance"]
    list_select_related = ["owner"]

    name_short = clipped("display_name", _("display name"), 28, ordering="display_name")
    owner_short = clipped("owner", _("owner"), 20, ordering="owner__username")
    checked_short = dated("last_health_check", _("last health check"), ordering="last_health_check")

    @admin.display(description=_("requests"), ordering="total_requests")
    def requests_short(self, obj):
        return obj.total_requests

    @admin.display(description=_("ms"), ordering="average_response_time")
    def response_time_short(self, obj):
        return round(obj.average_response_time)

    @admin.display(description=_("Health"), ordering="health_status")
    def health_badge(self, obj):
        colours = {"healthy": "#1a7f37", "degraded": "#b58100", "unhealthy": "#cf222e"}
        label = obj.get_health_status_display() or _("unknown")
        return format_html('<span style="color:{}">●</span> {}', colours.get(obj.health_status, "#888"), label)

    @admin.display(description=_("Success rate"))
    def success_rate_display(self, obj):
        rate = obj.success_rate
        return "—" if rate is None else f"{rate}%"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)  # a new class per request
        form.may_keep_credentials_on_url_change = request.user.has_perm(KEEP_CREDENTIALS_ON_URL_CHANGE)
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def _set_status(self, request, queryset, status):
        count = queryset.update(status=status)
        self.message_user(
            request, ngettext("%d provider updated.", "%d providers updated.", count) % count, messages.SUCCESS
        )

    @admin.action(description=_("Enable selected providers"), permissions=["change"])
    def enable(self, request, queryset):
        self._set_status(request, queryset, Status.ACTIVE)

    @admin.action(description=_("Disable selected providers"), permissions=["change"])
    def disable(self, request, queryset):
        self._set_status(request, queryset, Status.INACTIVE)

    @admin.action(description=_("Put selected providers in maintenance"), permissions=["change"])
    def maintenance(self, request, queryset):
        self._set_status(request, queryset, Status.MAINTENANCE)


@admin.register(IntegrationLog)
class IntegrationLogAdmin(FlatListAdminMixin, ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["started_at", "provider_short", "transport", "operation_short", "endpoint_short",
                    "http_status", "status", "duration_short"]
    # Methods seen in the newest calls: Django's own filter of a free-text column reads DISTINCT over the table.
    list_filter = ["status", "transport", RecentValuesFilter.of("method", _("method")), "integration__kind"]
    search_fields = ["request_id", "operation", "endpoint", "error_message"]
    date_hierarchy = "started_at"
    list_select_related = ["integration"]
    sortable_by = ["started_at"]  # the one ordering an index serves at a million rows (FlatListAdminMixin)

    provider_short = clipped("integration", _("provider"), 24, ordering="integration__display_name")
    operation_short = clipped("operation", _("operation"), 24, ordering="operation")
    endpoint_short = clipped("endpoint", _("endpoint"), 48)

    @admin.display(description=_("HTTP"), ordering="response_status")
    def http_status(self, obj):
        return obj.response_status

    @admin.display(description=_("ms"), ordering="request_duration")
    def duration_short(self, obj):
        return None if obj.request_duration is None else round(obj.request_duration)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # An audit trail: rows go only by retention (manage_log_partitions), never one by one.
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["received_at", "kind", "code_short", "provider_short", "event_id_short", "state", "attempts"]
    code_short = clipped("code", _("adapter"), 20, ordering="code")
    provider_short = clipped("integration", _("provider"), 24, ordering="integration__display_name")
    event_id_short = clipped("event_id", _("event id"), 24, ordering="event_id")
    list_filter = ["state", "kind", "code"]
    search_fields = ["event_id", "error"]
    # The body as received is for handlers only (it may hold card numbers, tokens, passwords): the
    # admin shows the redacted copy and never decrypts the raw one, not even to list rows.
    exclude = ["raw_body"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields if f.name != "raw_body"]
    actions = ["replay"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw_body")

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Process selected events again"), permissions=["change"])
    def replay(self, request, queryset):
        from .tasks import process_webhook_event

        # The ids first: counting the queryset afterwards would miss events already processed meanwhile.
        pks = list(queryset.filter(state=WebhookEvent.State.FAILED).values_list("pk", flat=True))
        for pk in pks:
            process_webhook_event.delay(pk)
        self.message_user(request, _("%d event(s) queued again.") % len(pks), messages.SUCCESS)


@admin.register(Fallback)
class FallbackAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    """The seed's fallback table (see integrations.selection); Django's model permissions apply."""

    list_display = ["code", "alternative", "position", "enabled"]
    list_editable = ["position", "enabled"]
    list_filter = ["code", "enabled"]


@admin.register(StateTransition)
class StateTransitionAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    """The append-only history of state moves: read only, never added, changed or deleted here."""

    list_display = ["created_at", "content_type", "object_short", "field", "from_state", "to_state", "actor_short",
                    "reason_short"]
    object_short = clipped("object_id", _("object id"), 13, ordering="object_id")
    actor_short = clipped("actor", _("by"), 16)
    reason_short = clipped("reason", _("reason"), 40)
    list_filter = ["content_type", "field", "to_state"]
    search_fields = ["=object_id", "reason"]
    list_select_related = ["content_type", "actor"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- exactly-once writes: operator resolution ----------------------------------------------------------
class ResolveSentForm(forms.Form):
    def __init__(self, *args, objects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.objects = list(objects)
        for obj in self.objects:
            self.fields[f"reference_{obj.pk}"] = forms.CharField(
                label=str(obj), required=False, max_length=255,
                help_text=_("The provider's reference for this write; leave empty to skip the row."),
            )

    def rows(self):
        return [(obj, self[f"reference_{obj.pk}"]) for obj in self.objects]


class ExternalWriteAdminMixin:
    """Operator resolution of rows whose outcome is unknown, for a ModelAdmin of an `ExternalWrite`
    model: set `external_write` to the domain's `ExternalWrite` instance and add the actions
    `resolve_as_sent` and `resolve_as_failed`. Both need the model's change permission and record
    the operator as the transitions' actor."""

    external_write = None
    resolution_actions = ("resolve_as_sent", "resolve_as_failed")

    def changelist_view(self, request, extra_context=None):
        # Django hides an action the user may not run and answers a forced one with "No action
        # selected"; say plainly why nothing happened.
        if (
            request.method == "POST"
            and request.POST.get("action") in self.resolution_actions
            and not self.has_change_permission(request)
        ):
            self._refuse(request)
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def _refuse(self, request):
        self.message_user(request, gettext("You may not resolve these rows: it needs the permission to change them."),
                          messages.ERROR)

    def _unknown(self, queryset):
        write = self.external_write
        return queryset.filter(**{write.machine.field: write.unknown})

    @admin.action(description=_("Resolve as sent, with the provider's reference"), permissions=["change"])
    def resolve_as_sent(self, request, queryset):
        if not self.has_change_permission(request):
            return self._refuse(request)
        objects = list(self._unknown(queryset))
        if not objects:
            self.message_user(request, gettext("None of the selected rows has an unknown outcome."),
                              messages.WARNING)
            return None
        form = ResolveSentForm(request.POST if "apply" in request.POST else None, objects=objects)
        if form.is_bound and form.is_valid():
            done = 0
            for obj in objects:
                reference = form.cleaned_data.get(f"reference_{obj.pk}", "").strip()
                if not reference:
                    continue
                try:
                    done += bool(self.external_write.resolve_sent(obj, reference, actor=request.user))
                except ValidationError as exc:
                    self.message_user(request, f"{obj}: {'; '.join(exc.messages)}", messages.ERROR)
            self.message_user(request, ngettext("%(count)d row resolved as sent.", "%(count)d rows resolved as sent.",
                                                done) % {"count": done})
            return None
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Resolve as sent"),
            "opts": opts,
            "form": form,
            "queryset": objects,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "action": "resolve_as_sent",
            "media": self.media,
        }
        return TemplateResponse(request, "admin/integrations/resolve_sent.html", context)

    @admin.action(description=_("Resolve as failed (the provider has no such write)"), permissions=["change"])
    def resolve_as_failed(self, request, queryset):
        if not self.has_change_permission(request):
            return self._refuse(request)
        done = 0
        for obj in self._unknown(queryset):
            done += bool(self.external_write.resolve_failed(obj, actor=request.user))
        self.message_user(request, ngettext("%(count)d row resolved as failed.", "%(count)d rows resolved as failed.",
                                            done) % {"count": done})
        return None


# --- other apps' admins: their actions declare permissions too --------------------------------------
# django-celery-beat's task actions (enable, disable, toggle, run a periodic task now) and django-axes'
# clean-up declare none, so Django offers them to anyone who may view the rows. Their admins are
# registered again here with the permission each action needs.
THIRD_PARTY_ACTION_PERMISSIONS = {
    ("django_celery_beat", "PeriodicTask"): {
        "enable_tasks": ["change"],
        "disable_tasks": ["change"],
        "toggle_tasks": ["change"],
        "run_tasks": ["change"],
    },
    ("axes", "AccessAttempt"): {"cleanup_expired_attempts": ["delete"]},
}


def _with_permissions(func, permissions):
    @functools.wraps(func)
    def action(modeladmin, request, queryset):
        return func(modeladmin, request, queryset)

    action.allowed_permissions = permissions
    return action


def _guard_third_party_actions(site=admin.site):
    for (app_label, model_name), needs in THIRD_PARTY_ACTION_PERMISSIONS.items():
        if not apps.is_installed(app_label):
            continue
        import_module(f"{app_label}.admin")  # registers its admins, whatever the apps' order
        model = apps.get_model(app_label, model_name)
        if not site.is_registered(model):
            continue
        current = type(site.get_model_admin(model))
        attrs = {name: _with_permissions(getattr(current, name), perms) for name, perms in needs.items()}
        guarded = type(current.__name__, (ActionPermissionsMixin, current), {"__module__": __name__, **attrs})
        site.unregister(model)
        site.register(model, guarded)


_guard_third_party_actions()
