from django.conf import settings
from django.core.management.base import BaseCommand

from integrations import partitions


class Command(BaseCommand):
    help = "Create the coming months' partitions of integration_logs and drop those past retention."

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=settings.INTEGRATION_LOG_PARTITIONS_AHEAD)
        parser.add_argument("--retention-months", type=int, default=settings.INTEGRATION_LOG_RETENTION_MONTHS)

    def handle(self, *args, ahead, retention_months, **options):
        if ahead < 0 or retention_months < 1:
            from django.core.management.base import CommandError

            raise CommandError("--ahead must be 0 or more and --retention-months 1 or more.")
        created = partitions.ensure_partitions(ahead)
        dropped = partitions.drop_expired(retention_months)
        if partitions.is_partitioned():
            self.stdout.write(f"created: {', '.join(created) or 'none'}; dropped: {', '.join(dropped) or 'none'}")
        else:
            self.stdout.write(f"not partitioned on this database; deleted {dropped} expired log row(s)")
