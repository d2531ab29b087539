"""`manage.py moamalat_hash --key HEX NAME=VALUE …`: the SecureHash of the given fields, so that an
operator can check by hand a hash the gateway sent or refused."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from payments.moamalat_hash import BadKey, secure_hash, signed_text


class Command(BaseCommand):
    help = gettext_lazy(
        "Print Moamalat's SecureHash of the given fields (sorted by name, joined as Name=value&…, "
        "HMAC-SHA256 with the hex key decoded). Example: moamalat_hash --key 3963… Amount=1000 "
        "DateTimeLocalTrxn=202611250830 MerchantId=10081014649 MerchantReference=ORDER-1 TerminalId=99179395"
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help=_("The secure or notification key, in hexadecimal."))
        parser.add_argument("fields", nargs="+", metavar="NAME=VALUE", help=_("A signed field and its value."))
        parser.add_argument("--show-text", action="store_true", help=_("Also print the text that is signed."))

    def handle(self, *args, key, fields, show_text=False, **options):
        values = {}
        for pair in fields:
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or not name or not name.isascii() or not name.isalnum():
                raise CommandError(_("“%s” is not NAME=VALUE (a field name of letters and digits, then “=”).")
                                   % pair[:60])
            if name in values:
                raise CommandError(_("The field %s is given twice.") % name)
            values[name] = value
        try:
            digest = secure_hash(key, values)
        except BadKey:
            raise CommandError(_("The key must be hexadecimal: pairs of the digits 0-9 and letters A-F.")) from None
        if show_text:
            self.stdout.write(signed_text(values))
        self.stdout.write(digest)
