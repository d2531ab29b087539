import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from integrations.domain import domain_configs

ADMIN = ("admin", "admin")
MERCHANT = "demo-merchant"


class Command(BaseCommand):
    help = (
        "Load the demo data: an admin login, a merchant with an API token, and every provider pointed "
        "at its local simulator. Running it again changes nothing."
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
        for config in domain_configs():
            config.load_demo(merchant=merchant, stdout=self.stdout)
        site = f"http://{os.environ.get('RUN_ADDR', '127.0.0.1:8000')}"  # where `make run` serves
        # An admin that existed before keeps its own password: never print one that does not work.
        password = ADMIN[1] if admin.check_password(ADMIN[1]) else _("(unchanged: set it with `changepassword`)")
        self.stdout.write(
            "\nDemo data is ready.\n"
            f"  admin:    {site}/admin/  user {ADMIN[0]}  password {password}\n"
            f"  merchant: {MERCHANT}  API token {token.key}\n"
            f"  API docs: {site}/api/docs/\n"
        )
