from django.utils.translation import gettext_lazy as _

from integrations.domain import DomainConfig


class MessagingConfig(DomainConfig):
    name = "messaging"
    verbose_name = _("Messaging")
    default_auto_field = "django.db.models.BigAutoField"
    # Declares nothing yet: its adapters, jobs, routes and figures come with its providers
    # (see integrations.domain.DomainConfig).
