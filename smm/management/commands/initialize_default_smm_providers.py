from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from smm.providers import DEFAULT_PROVIDERS, initialize_default_providers


class Command(BaseCommand):
    help = (
        "The seed's initializeDefaultProviders(userId, keys): create the default SMM panels (Just Another "
        "Panel, SMM Kings, Secsers) for a merchant, or update their API keys. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The merchant who owns the panels.")
        for code, (name, display, _url) in DEFAULT_PROVIDERS.items():
            parser.add_argument(f"--{code}", dest=code, metavar="API_KEY", help=f"API key for {display} ({name}).")
        parser.add_argument("--sandbox", action="store_true",
                            help="Point the panels at the local simulator (SANDBOX_BASE_URL) instead of the panels.")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        keys = {code: options[code] for code in DEFAULT_PROVIDERS if options.get(code)}
        base_urls = None
        if options["sandbox"]:
            base = settings.SANDBOX_BASE_URL.rstrip("/")
            base_urls = {code: f"{base}/smm/{code}/api/v2" for code in DEFAULT_PROVIDERS}
            keys = {code: keys.get(code) or f"sandbox-{code}-key" for code in DEFAULT_PROVIDERS}
        if not keys:
            raise CommandError("Give at least one key (--jap, --smmkings, --secsers) or --sandbox.")
        providers = initialize_default_providers(user, keys, base_urls=base_urls)
        for provider in providers:
            self.stdout.write(f"{provider.integration.display_name}: {provider.integration.base_url}")
