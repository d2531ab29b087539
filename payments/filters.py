"""The payments API's list filters (camelCase parameters, snake_case read too: integrations.api.filters)."""

import django_filters

from integrations.api.filters import FilterSet, IdFilter, UtcDateTimeFilter

from .models import CURRENCIES, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus


class UpperCharFilter(django_filters.CharFilter):
    def filter(self, qs, value):
        return super().filter(qs, value.strip().upper() if value else value)


class PaymentFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices)
    method = django_filters.ChoiceFilter(choices=PaymentMethod._meta.get_field("code").choices)
    bank = UpperCharFilter(field_name="bank_id", max_length=8, help_text="A bank's code: NBC, JUM, SAH, WAH, BCD")
    currency = django_filters.ChoiceFilter(choices=CURRENCIES)
    reference = django_filters.CharFilter(max_length=30, help_text="Our reference (EP…)")
    orderReference = django_filters.CharFilter(field_name="order_reference", max_length=100,
                                               help_text="Your order number (exact)")
    createdAfter = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdBefore = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Payment
        fields = ["status", "method", "bank", "currency", "reference", "orderReference", "createdAfter",
                  "createdBefore"]


class RefundFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=RefundStatus.choices)
    payment = IdFilter(field_name="payment_id", help_text="A payment's id")
    createdAfter = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdBefore = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Refund
        fields = ["status", "payment", "createdAfter", "createdBefore"]
