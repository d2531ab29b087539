"""Arabic is what operators and merchants read: every catalogue is complete, and the compiled .mo
that Django loads says the same as the .po that people edit."""

import ast
import gettext
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(p for p in ROOT.glob("**/locale/ar/LC_MESSAGES/django.po") if ".venv" not in p.parts)


def parse_po(path):
    """{msgid or (msgid, plural): msgstr or [forms]} and the set of fuzzy msgids, from a .po file."""
    entries, fuzzy = {}, set()
    entry, field, flags = {}, None, ""

    def flush():
        if entry.get("msgid"):
            key = (entry["msgid"], entry["msgid_plural"]) if "msgid_plural" in entry else entry["msgid"]
            if "msgctxt" in entry:
                key = (entry["msgctxt"], key)
            entries[key] = entry.get("msgstr", [entry[k] for k in sorted(entry) if k.startswith("msgstr[")])
            if "fuzzy" in flags:
                fuzzy.add(key)

    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#~"):
            continue
        if not line.strip():
            flush()
            entry, field, flags = {}, None, ""
        elif line.startswith("#,"):
            flags = line
        elif line.startswith('"'):
            entry[field] += ast.literal_eval(line)
        elif not line.startswith("#"):
            field, _, value = line.partition(" ")
            entry[field] = ast.literal_eval(value)
    return entries, fuzzy


def test_there_are_catalogues_for_every_app_with_texts():
    apps_with_catalogues = {p.parts[len(ROOT.parts)] for p in CATALOGUES}
    assert {"integrations", "payments", "smm", "monitoring", "locale"} <= apps_with_catalogues


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_catalogue_is_complete_and_compiled(po):
    entries, fuzzy = parse_po(po)
    assert entries
    untranslated = [k for k, v in entries.items() if not (all(v) if isinstance(v, list) else v)]
    assert not untranslated, f"untranslated in {po}: {untranslated[:5]}"
    assert not fuzzy, f"fuzzy in {po}: {sorted(map(str, fuzzy))[:5]}"

    with open(po.with_suffix(".mo"), "rb") as fp:
        compiled = gettext.GNUTranslations(fp)
    stale = []
    for key, value in entries.items():
        if isinstance(key, tuple) and isinstance(key[1], tuple):
            continue  # contexts: rare here, checked through Django below
        if isinstance(key, tuple):
            if compiled.ngettext(key[0], key[1], 1) != value[1]:
                stale.append(key[0])
        elif compiled.gettext(key) != value:
            stale.append(key)
    assert not stale, f"{po.with_suffix('.mo')} is older than its .po (run `make messages`): {stale[:5]}"


def test_django_serves_arabic_with_english_available():
    from integrations.models import ExternalIntegration

    with translation.override("ar"):
        arabic = str(ExternalIntegration._meta.verbose_name_plural)
    with translation.override("en"):
        english = str(ExternalIntegration._meta.verbose_name_plural)
    assert english == "providers" or english.isascii()
    assert arabic != english and any("\u0600" <= ch <= "\u06ff" for ch in arabic)
