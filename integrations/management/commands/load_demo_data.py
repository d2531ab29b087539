import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework.authtoken.models import Token

from integrations.breaker import CircuitBreaker
from integrations.domain import domain_configs
from integrations.models import ExternalIntegration

ADMIN = ("admin", "admin")
MERCHANT = "demo-merchant"


class Command(BaseCommand):
    help = (
        "Load the demo data: an admin login, a merchant with an API token, and every provider pointed "
        "at its local simulator (SANDBOX_BASE_URL, by default at RUN_ADDR). Running it again changes nothing; "
        "run on another address, it points the demo providers there."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=ADMIN[0], defaults={"is_staff": True, "is_superuser": True, "email": "admin@localhost"}
        )
        if created:
            admin.set_password(ADMIN[1])
            admin.save()
        merchant, __ = User.objects.get_or_create(username=MERCHANT, defaults={"email": "merchant@localhost"})
        token, __ = Token.objects.get_or_create(user=merchant)
        demo = ExternalIntegration.objects.filter(owner=merchant)
        before = dict(demo.values_list("pk", "base_url"))
        for config in domain_configs():
            config.load_demo(merchant=merchant, stdout=self.stdout)
        moved = [pk for pk, url in demo.values_list("pk", "base_url") if pk in before and before[pk] != url]
        if moved:
            self._forget_health(moved)
        site = f"http://{os.environ.get('RUN_ADDR', '127.0.0.1:8000')}"  # where `make run` serves
        # An admin that existed before keeps its own password: never print one that does not work.
        password = ADMIN[1] if admin.check_password(ADMIN[1]) else _("(unchanged: set it with `changepassword`)")
        self.stdout.write(
            "\nDemo data is ready.\n"
            f"  admin:    {site}/admin/  user {ADMIN[0]}  password {password}\n"
            f"  merchant: {MERCHANT}  API token {token.key}\n"
            f"  API docs: {site}/api/docs/\n"
        )

    def _forget_health(self, pks):
        """What is known of re-pointed providers is about their old address (another port's
        simulators, down now): unknown until the next health round, and their breakers closed, so
        that the panels are neither shown down nor refused calls."""
        ExternalIntegration.objects.filter(pk__in=pks).update(health_status="", last_health_check=None)
        transaction.on_commit(lambda: [CircuitBreaker(pk).reset() for pk in pks])
        self.stdout.write(ngettext("%(count)d demo provider now points at %(url)s.",
                                   "%(count)d demo providers now point at %(url)s.", len(pks))
                          % {"count": len(pks), "url": settings.SANDBOX_BASE_URL})
