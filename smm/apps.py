from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmmConfig(AppConfig):
    name = "smm"
    verbose_name = _("SMM panels")
    default_auto_field = "django.db.models.BigAutoField"
    # code -> dotted path of the adapter class (see integrations.adapters).
    adapters = {}
