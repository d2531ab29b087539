"""The seed creates its default panels (JAP, SMM Kings, Secsers) "at registration": here, whenever a
merchant's user row is created, by any path (the admin, `create_merchant`, `load_demo_data`, a
sign-up API), not in one view that another path would bypass. Staff users are operators, not
merchants, and get none. SMM_DEFAULT_PANELS_AT_REGISTRATION = False switches it off."""

from django.conf import settings
from django.db.models.signals import post_save

DISPATCH_UID = "smm.default_panels_at_registration"


def default_panels_for_new_merchant(sender, instance, created, raw=False, **kwargs):
    # `raw`: a fixture being loaded brings its own rows.
    if not created or raw or instance.is_staff or instance.is_superuser:
        return
    if not getattr(settings, "SMM_DEFAULT_PANELS_AT_REGISTRATION", True):
        return
    from .providers import create_default_panels

    create_default_panels(instance)


def connect():
    post_save.connect(default_panels_for_new_merchant, sender=settings.AUTH_USER_MODEL, dispatch_uid=DISPATCH_UID)
