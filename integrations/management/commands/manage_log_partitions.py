from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations import partitions


class Command(BaseCommand):
    help = gettext_lazy("Create the coming months' partitions of integration_logs and drop those past retention.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--ahead",
            type=int,
            default=settings.INTEGRATION_LOG_PARTITIONS_AHEAD,
            help=gettext_lazy("How many months after this one get a partition (0 or more)."),
        )
        parser.add_argument(
            "--retention-months",
            type=int,
            default=settings.INTEGRATION_LOG_RETENTION_MONTHS,
            help=gettext_lazy("Logs older than this many whole months are removed (1 or more)."),
        )

    def handle(self, *args, ahead, retention_months, **options):
        if ahead < 0:
            raise CommandError(_("--ahead must be 0 or more, not %(value)s.") % {"value": ahead})
        if retention_months < 1:
            raise CommandError(_("--retention-months must be 1 or more, not %(value)s.") % {"value": retention_months})
        lines = []
        partitions.ensure_partitions(ahead, report=lines.append)
        partitions.drop_expired(retention_months, report=lines.append)
        if not lines:
            lines.append(_("nothing to do: partitions are in place and no log is past retention"))
        if not partitions.is_partitioned():
            lines.insert(0, _("integration_logs is not partitioned on this database: only expired rows are deleted"))
        for line in lines:
            self.stdout.write(line)
