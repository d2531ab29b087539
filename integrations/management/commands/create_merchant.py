from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.authtoken.models import Token


def _taken(username):
    return CommandError(_("A user named “%(username)s” already exists; nothing was changed.") % {"username": username})


class Command(BaseCommand):
    help = gettext_lazy("Create a merchant: a user with an API token. An existing username is refused.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, email, **options):
        User = get_user_model()
        username, email = username.strip(), email.strip()
        try:
            User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
            if email:
                validate_email(email)
        except ValidationError as exc:
            raise CommandError(" ".join(str(m) for m in exc.messages)) from None
        if User.objects.filter(**{User.USERNAME_FIELD: username}).exists():
            raise _taken(username)
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, email=email)
                token = Token.objects.create(user=user)
        except IntegrityError:  # created by someone else meanwhile
            raise _taken(username) from None
        announcement = _("Created merchant %(username)s. Its API token is on the next line:")
        self.stdout.write(announcement % {"username": username})
        # The token alone on the last line: a translation wraps words in bidirectional marks, and a
        # script taking the last word or line must get exactly the token.
        self.stdout.write(token.key)
