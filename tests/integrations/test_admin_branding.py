"""The admin is the EISHRO back office, in Arabic and English: never "Django administration"."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

BRANDING = {
    "en": ("EISHRO back office", "Integrations hub"),
    "ar": ("لوحة إدارة إيشرو", "مركز التكاملات"),
}
DJANGOS = ("Django administration", "Django site admin", "Site administration", "إدارة جانغو", "إدارة الموقع")


@pytest.mark.parametrize("language", sorted(BRANDING))
def test_the_sign_in_page_and_the_index_carry_the_back_offices_name(language, staff):
    header, index_title = BRANDING[language]
    client = Client()
    login = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert _title(login).endswith(f"| {header}") and f'<a href="/admin/">{header}</a>' in login
    client.force_login(staff)
    index = client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert _title(index) == f"{index_title} | {header}"
    assert f'<a href="/admin/">{header}</a>' in index
    changelist = client.get("/admin/integrations/externalintegration/", HTTP_ACCEPT_LANGUAGE=language)
    assert _title(changelist.content.decode()).endswith(f"| {header}")
    for page in (login, index, changelist.content.decode()):
        assert not any(text in page for text in DJANGOS)


def _title(html):
    return html.split("<title>", 1)[1].split("</title>", 1)[0].strip()


def test_long_values_are_clipped_in_the_lists_with_the_whole_value_in_the_title(staff):
    import uuid

    from django.utils import timezone

    from integrations.models import ExternalIntegration, IntegrationLog, Kind

    endpoint = "https://api.moamalat.ly/api/v2/payments/" + "x" * 200
    provider = ExternalIntegration.objects.create(kind=Kind.PAYMENT, code="panel_v2", name="moamalat",
                                                  display_name="Moamalat", base_url="https://api.moamalat.ly/")
    IntegrationLog.objects.insert_many([IntegrationLog(id=uuid.uuid4(), integration=provider, endpoint=endpoint,
                                                       method="GET", started_at=timezone.now())])
    client = Client()
    client.force_login(staff)
    html = client.get("/admin/integrations/integrationlog/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<span title="{endpoint}">{endpoint[:47]}…</span>' in html
