from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create a merchant (a user with an API token), or show the token of an existing one."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, email, **options):
        username = username.strip()
        if not username or len(username) > 150:
            raise CommandError("The username must be 1 to 150 characters.")
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        if user.is_staff:
            raise CommandError(f"{username} is a staff user, not a merchant.")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"{'created' if created else 'exists'}: {username} token={token.key}")
