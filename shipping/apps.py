from django.utils.translation import gettext_lazy as _

from integrations.domain import DomainConfig


class ShippingConfig(DomainConfig):
    name = "shipping"
    verbose_name = _("Shipping")
    default_auto_field = "django.db.models.BigAutoField"
    # Declares nothing yet: its adapters, jobs, routes and figures come with its providers
    # (see integrations.domain.DomainConfig).
