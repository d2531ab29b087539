"""Operators' screens: payments (history, refunds, refresh, confirm a transfer, refund an amount, totals
per day, method and bank), refunds, reconciliation mismatches, and the banks and ways to pay.

Every action declares the model permission it needs and goes through payments.services; a refusal of
a service is an admin error message, never a 500."""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from integrations.admin import ActionPermissionsMixin, ExternalWriteAdminMixin
from integrations.admin_columns import clipped
from integrations.errors import ProviderError
from integrations.paging import FlatListAdminMixin

from . import services
from .interface import Method
from .models import (
    CAPTURED_STATES,
    CURRENCIES,
    Bank,
    Payment,
    PaymentMethod,
    PaymentStatus,
    ReconciliationMismatch,
    Refund,
    RefundStatus,
)
from .serializers import money

# The totals read the filtered list grouped by day, method and bank; without a date in the filter they
# cover the last TOTALS_DAYS days, so that the summary stays an index range at any table size.
TOTALS_DAYS = 31


def _message(exc):
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


class RefundInline(admin.TabularInline):
    model = Refund
    fields = readonly_fields = ["reference", "amount", "status", "reason", "provider_reference", "actor", "error",
                                "created_at", "completed_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MismatchInline(admin.TabularInline):
    model = ReconciliationMismatch
    fields = readonly_fields = ["kind", "source", "ours", "theirs", "created_at", "resolved_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PerPaymentForm(forms.Form):
    """An action's intermediate form: the same fields for each selected payment (`<name>_<pk>`)."""

    row_fields = {}

    def __init__(self, data=None, *, objects):
        super().__init__(data)
        self.objects = objects
        for obj in objects:
            for name, make in self.row_fields.items():
                self.fields[f"{name}_{obj.pk}"] = make(obj)

    def rows(self):
        return [(obj, [self[f"{name}_{obj.pk}"] for name in self.row_fields]) for obj in self.objects]

    def values(self, obj):
        return {name: self.cleaned_data.get(f"{name}_{obj.pk}") for name in self.row_fields}


def _amount_field(obj, *, required, label, help_text=""):
    return forms.DecimalField(label=label, required=required, max_digits=18, decimal_places=3,
                              min_value=Decimal("0.001"), help_text=help_text,
                              widget=forms.TextInput(attrs={"dir": "ltr", "size": 14}))


class ConfirmTransferForm(PerPaymentForm):
    row_fields = {
        "bank_reference": lambda obj: forms.CharField(label=_("Bank's transfer reference"), max_length=100,
                                                      required=False, widget=forms.TextInput(attrs={"dir": "ltr"})),
        "amount": lambda obj: _amount_field(obj, required=False, label=_("Amount received"),
                                            help_text=_("Optional: checked against the payment.")),
    }


class RefundForm(PerPaymentForm):
    row_fields = {
        "amount": lambda obj: _amount_field(obj, required=False, label=_("Amount to refund"), help_text=_(
            "At most %(amount)s %(currency)s.") % {"amount": obj.amount - obj.refunded_amount,
                                                   "currency": obj.currency}),
        "reason": lambda obj: forms.CharField(label=_("Reason"), max_length=2000, required=False),
    }


def _grouped(queryset, paid, key, label=lambda value: value, newest_first=False):
    """Rows of {label, currency, count, amount, paid} per value of `key` and currency, amounts as
    strings in the currency's decimals; `paid` is what was captured less what was refunded."""
    rows = {}
    for row in queryset.values(key, "currency").annotate(n=Count("pk"), total=Sum("amount")).order_by():
        rows[(row[key], row["currency"])] = {"label": label(row[key]), "currency": row["currency"], "count": row["n"],
                                             "amount": money(row["total"], row["currency"]),
                                             "paid": money(0, row["currency"])}
    for row in paid.values(key, "currency").annotate(total=Sum("amount"), back=Sum("refunded_amount")).order_by():
        entry = rows.get((row[key], row["currency"]))
        if entry is not None:
            entry["paid"] = money(row["total"] - (row["back"] or 0), row["currency"])
    return [rows[k] for k in sorted(rows, key=lambda k: (str(k[0] or ""), k[1]), reverse=newest_first)]


@admin.register(Payment)
class PaymentAdmin(FlatListAdminMixin, ActionPermissionsMixin, admin.ModelAdmin):
    # Short columns: the list fits 1,400 px (tests/integrations/test_admin_changelist_width.py).
    list_display = ["reference", "owner_short", "order_short", "amount_display", "method", "bank", "status",
                    "created_at"]
    owner_short = clipped("owner", _("merchant"), 16, ordering="owner__username")
    order_short = clipped("order_reference", _("order reference"), 20)
    list_filter = ["status", "method", "bank", "currency", "created_at"]
    search_fields = ["=reference", "=order_reference", "=provider_reference"]
    list_select_related = ["owner", "bank"]
    date_hierarchy = "created_at"
    sortable_by = ["created_at"]  # the ordering its indexes serve at a million rows (FlatListAdminMixin)
    readonly_fields = ["reference", "public_id", "owner", "order_reference", "amount", "currency", "method", "bank",
                       "integration", "status", "next_step", "instructions", "provider_reference",
                       "network_reference", "payer_phone", "idempotency_key", "refunded_amount", "error",
                       "expires_at", "paid_at", "last_checked_at", "created_at", "updated_at", "history"]
    fields = readonly_fields
    inlines = [RefundInline, MismatchInline]
    actions = ["refresh_status", "confirm_transfer", "refund"]
    change_list_template = "admin/payments/payment/change_list.html"

    def has_add_permission(self, request):
        return False  # payments come from merchants' checkouts (the API)

    def has_delete_permission(self, request, obj=None):
        return False  # money records are kept; a payment ends in a final state instead

    @admin.display(description=_("history"))
    def history(self, obj):
        """Every move of the payment as the state machine recorded it (append-only), oldest first."""
        moves = Payment.machine.history_of(obj).select_related("actor").order_by("created_at", "id")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (date_format(localtime(m.created_at), "SHORT_DATETIME_FORMAT"), m.from_state or "—", m.to_state,
             m.reason, m.actor or "") for m in moves))
        return format_html('<table class="payment-history"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
                           '<th>{}</th></tr></thead><tbody>{}</tbody></table>', _("at"), _("from"), _("to"),
                           _("reason"), _("by"), rows)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        return f"{money(obj.amount, obj.currency)} {obj.currency}"

    # --- totals ---------------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            context["payment_totals"] = self.totals(request, context["cl"].queryset)
        return response

    def totals(self, request, queryset):
        """Payments of the filtered list (the last TOTALS_DAYS days unless the filter names dates):
        count, amount and amount paid (captured, less refunds) per day, per method and per bank."""
        dated = any(key.startswith("created_at") for key in request.GET)
        since = None
        if not dated:
            since = timezone.now() - timedelta(days=TOTALS_DAYS)
            queryset = queryset.filter(created_at__gte=since)
        queryset = queryset.order_by()
        paid = queryset.filter(status__in=CAPTURED_STATES)
        names = dict(PaymentMethod.objects.values_list("code", "name_en"))

        return {
            "since": since,
            "by_day": _grouped(queryset.annotate(day=TruncDate("created_at")),
                               paid.annotate(day=TruncDate("created_at")), "day", newest_first=True),
            "by_method": _grouped(queryset, paid, "method", lambda code: names.get(code) or code),
            "by_bank": _grouped(queryset, paid, "bank_id", lambda code: code or gettext("no bank")),
        }

    # --- actions --------------------------------------------------------------------------------
    @admin.action(description=_("Refresh status from the provider"), permissions=["change"])
    def refresh_status(self, request, queryset):
        moved = asked = 0
        for payment in queryset.select_related("integration"):
            try:
                moved += bool(services.refresh_status(payment))
                asked += 1
            except ProviderError as exc:
                if payment.integration_id:
                    exc.mask(payment.integration.secret_values)
                self.message_user(request, f"{payment.reference}: {_message(exc)}", messages.ERROR)
        if asked:
            self.message_user(request, gettext("%(asked)d payment(s) asked, %(moved)d changed status.")
                              % {"asked": asked, "moved": moved}, messages.SUCCESS)

    def _intermediate(self, request, queryset, form_class, *, action, title, intro, submit):
        objects = list(queryset)
        form = form_class(request.POST if "apply" in request.POST else None, objects=objects)
        if form.is_bound and form.is_valid():
            return form, None
        context = {
            **self.admin_site.each_context(request),
            "title": title, "intro": intro, "submit": submit, "opts": self.model._meta, "form": form,
            "action": action, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "media": self.media,
        }
        return None, TemplateResponse(request, "admin/payments/payment/action_form.html", context)

    @admin.action(description=_("Confirm a bank transfer (with the bank's reference)"), permissions=["change"])
    def confirm_transfer(self, request, queryset):
        transfers = queryset.filter(method=Method.BANK_TRANSFER,
                                    status__in=[PaymentStatus.PENDING, PaymentStatus.UNKNOWN])
        if not transfers.exists():
            self.message_user(request, gettext("None of the selected payments is a bank transfer waiting for "
                                               "confirmation."), messages.WARNING)
            return None
        form, page = self._intermediate(
            request, transfers, ConfirmTransferForm, action="confirm_transfer", title=gettext("Confirm transfers"),
            intro=gettext("For each transfer found on the bank statement, enter the bank's reference of the "
                          "transfer (and the amount that arrived, to have it checked). Rows left empty are not "
                          "changed."),
            submit=gettext("Confirm"))
        if page is not None:
            return page
        done = 0
        for payment in form.objects:
            values = form.values(payment)
            if not (values["bank_reference"] or "").strip():
                continue
            try:
                services.confirm_transfer(payment, values["bank_reference"], actor=request.user,
                                          amount=values["amount"])
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{payment.reference}: {_message(exc)}", messages.ERROR)
        self.message_user(request, ngettext("%(count)d transfer confirmed.", "%(count)d transfers confirmed.", done)
                          % {"count": done}, messages.SUCCESS if done else messages.WARNING)
        return None

    @admin.action(description=_("Refund an amount"), permissions=["change"])
    def refund(self, request, queryset):
        refundable = queryset.filter(status__in=CAPTURED_STATES).select_related("integration")
        if not refundable.exists():
            self.message_user(request, gettext("None of the selected payments is paid: nothing can be refunded."),
                              messages.WARNING)
            return None
        form, page = self._intermediate(
            request, refundable, RefundForm, action="refund", title=gettext("Refund payments"),
            intro=gettext("Enter the amount to refund of each payment, and why. Rows left empty are not "
                          "refunded. A refund is sent to the provider once; cash and transfer refunds wait for "
                          "an operator to confirm the money was handed back."),
            submit=gettext("Refund"))
        if page is not None:
            return page
        done = 0
        for payment in form.objects:
            values = form.values(payment)
            if values["amount"] is None:
                continue
            try:
                refund = services.refund(payment, values["amount"], reason=values["reason"] or "",
                                         actor=request.user)
            except (ValidationError, ProviderError) as exc:
                if isinstance(exc, ProviderError) and payment.integration_id:
                    exc.mask(payment.integration.secret_values)
                self.message_user(request, f"{payment.reference}: {_message(exc)}", messages.ERROR)
                continue
            done += 1
            level = messages.ERROR if refund.status == RefundStatus.FAILED else messages.SUCCESS
            self.message_user(request, gettext("%(payment)s: refund %(refund)s of %(amount)s %(currency)s is "
                                               "%(status)s.")
                              % {"payment": payment.reference, "refund": refund.reference,
                                 "amount": money(refund.amount, payment.currency), "currency": payment.currency,
                                 "status": refund.get_status_display()}, level)
        if not done:
            self.message_user(request, gettext("No refund was made."), messages.WARNING)
        return None


@admin.register(Refund)
class RefundAdmin(FlatListAdminMixin, ExternalWriteAdminMixin, ActionPermissionsMixin, admin.ModelAdmin):
    external_write = services.refund_submission  # refunds whose outcome was lost: resolved by an operator
    list_display = ["reference", "payment_short", "amount", "status", "actor", "created_at", "completed_at"]
    payment_short = clipped("payment.reference", _("payment"), 24, ordering="payment__reference")
    list_filter = ["status", "created_at"]
    search_fields = ["=reference", "=payment__reference", "=provider_reference"]
    list_select_related = ["payment", "actor"]
    date_hierarchy = "created_at"
    sortable_by = ["created_at"]
    readonly_fields = [f.name for f in Refund._meta.fields if f.name != "id"]
    actions = ["confirm_paid_back", "resolve_as_sent", "resolve_as_failed"]

    def has_add_permission(self, request):
        return False  # refunds are made from a payment (its action, or the API)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Confirm the money was handed back (cash and transfer refunds)"),
                  permissions=["change"])
    def confirm_paid_back(self, request, queryset):
        done = 0
        for refund in queryset.filter(status=RefundStatus.PENDING).select_related("payment"):
            try:
                services.confirm_manual_refund(refund, actor=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{refund.reference}: {_message(exc)}", messages.ERROR)
        self.message_user(request, ngettext("%(count)d refund confirmed.", "%(count)d refunds confirmed.", done)
                          % {"count": done}, messages.SUCCESS if done else messages.WARNING)


@admin.register(ReconciliationMismatch)
class ReconciliationMismatchAdmin(FlatListAdminMixin, ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["payment_short", "kind", "source", "ours", "theirs", "created_at", "resolved_at"]
    payment_short = clipped("payment.reference", _("payment"), 24, ordering="payment__reference")
    list_filter = ["kind", "source", ("resolved_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["=payment__reference"]
    list_select_related = ["payment"]
    date_hierarchy = "created_at"
    sortable_by = ["created_at"]
    readonly_fields = ["payment", "kind", "source", "ours", "theirs", "details", "created_at", "resolved_at",
                       "resolved_by"]
    actions = ["resolve"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark as resolved (checked by an operator)"), permissions=["change"])
    def resolve(self, request, queryset):
        done = queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now(), resolved_by=request.user)
        self.message_user(request, ngettext("%(count)d mismatch resolved.", "%(count)d mismatches resolved.", done)
                          % {"count": done}, messages.SUCCESS)


@admin.register(Bank)
class BankAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    list_display = ["code", "name_ar", "name_en", "type", "online_banking", "active", "position"]
    list_editable = ["active", "position"]
    list_filter = ["type", "active", "online_banking"]
    search_fields = ["code", "name_ar", "name_en"]


class PaymentMethodForm(forms.ModelForm):
    class Meta:
        model = PaymentMethod
        fields = ["code", "name_ar", "name_en", "adapter", "networks", "currencies", "min_amount", "max_amount",
                  "banks", "processing_time", "enabled", "planned", "position"]

    def clean_currencies(self):
        value = self.cleaned_data.get("currencies") or []
        known = {code for code, _label in CURRENCIES}
        if not isinstance(value, list) or not value or not set(value) <= known:
            raise forms.ValidationError(_("A list of currency codes among %s.") % ", ".join(sorted(known)))
        return value

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("min_amount"), cleaned.get("max_amount")
        for name, value in (("min_amount", low), ("max_amount", high)):
            if value is not None and value < 0:
                self.add_error(name, _("An amount cannot be negative."))
        if low is not None and high is not None and low > high:
            self.add_error("max_amount", _("The maximum (%(high)s) is below the minimum (%(low)s).")
                           % {"high": high, "low": low})
        return cleaned


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ActionPermissionsMixin, admin.ModelAdmin):
    form = PaymentMethodForm
    list_display = ["code", "name_ar", "name_en", "adapter", "currencies", "min_amount", "max_amount", "enabled",
                    "planned", "position"]
    list_filter = ["enabled", "planned"]
    filter_horizontal = ["banks"]
    readonly_fields = ["created_at", "updated_at"]
