"""The panel simulator itself: catalogues, progression, partials, errors, quirks (Django test client)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from smm.models import SandboxPanel, SandboxPanelOrder
from smm.sandbox import catalogue

pytestmark = pytest.mark.django_db
URL = "/sandbox/smm/{}/api/v2"


def call(client, code, **data):
    response = client.post(URL.format(code), {"key": f"sandbox-{code}-key", **data})
    return response


def test_three_panels_have_different_deterministic_catalogues_over_1000_services():
    jap, kings, secsers = (catalogue(c) for c in ("jap", "smmkings", "secsers"))
    assert min(len(jap), len(kings), len(secsers)) > 1000
    assert len({len(jap), len(kings), len(secsers)}) == 3
    assert set(jap).isdisjoint(kings) and jap["1"]["name"] != secsers["101"]["name"]
    catalogue.cache_clear()
    assert catalogue("jap") == jap  # deterministic
    types = {s["type"] for s in jap.values()}
    assert {"Default", "Custom Comments", "Package", "Poll", "Subscriptions", "Comment Likes"} <= types
    assert any(s["category"].startswith("Instagram") for s in jap.values())


def test_quirks_numbers_as_strings_or_numbers_missing_fields(client):
    jap = call(client, "jap", action="services").json()[0]
    kings = call(client, "smmkings", action="services").json()[0]
    secsers = call(client, "secsers", action="services").json()
    assert isinstance(jap["rate"], str) and isinstance(jap["service"], int) and "dripfeed" not in jap
    assert isinstance(kings["rate"], float) and isinstance(kings["service"], str) and "dripfeed" in kings
    assert all("desc" in s for s in secsers) and any("cancel" not in s for s in secsers)


def test_bad_keys(client):
    assert client.post(URL.format("jap"), {"key": "x", "action": "balance"}).json() == {"error": "Invalid API key"}
    html = client.post(URL.format("smmkings"), {"key": "x", "action": "balance"})
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert client.post(URL.format("secsers"), {"key": "x", "action": "balance"}).status_code == 401


def test_real_error_texts(client):
    service = next(s for s in catalogue("jap").values() if s["type"] == "Default")
    assert call(client, "jap", action="add", service="999999", link="https://x.ly", quantity=10).json() == {
        "error": "Incorrect service ID"}
    low = call(client, "jap", action="add", service=service["service"], link="https://x.ly",
               quantity=service["min"] - 1).json()
    assert low == {"error": f"Quantity less than minimal {service['min']}"}
    assert call(client, "jap", action="status", order="123456").json() == {"error": "Incorrect order ID"}
    SandboxPanel.objects.filter(code="jap").update(balance=0)
    assert call(client, "jap", action="add", service=service["service"], link="https://x.ly",
                quantity=service["min"]).json() == {"error": "Not enough funds on balance"}
    assert call(client, "jap", action="nope").json() == {"error": "Incorrect request"}


def test_orders_progress_with_time_and_some_end_partial(client):
    service = next(s for s in catalogue("secsers").values() if s["type"] == "Default")
    ids = [call(client, "secsers", action="add", service=service["service"], link="https://x.ly",
                quantity=service["min"]).json()["order"] for _ in range(8)]
    before = call(client, "secsers", action="balance").json()["balance"]
    assert float(before) < 1000  # the balance falls with each charge
    first = call(client, "secsers", action="status", orders=",".join(map(str, ids))).json()
    assert {v["status"] for v in first.values()} == {"Pending"} and "currency" not in first[str(ids[0])]
    SandboxPanelOrder.objects.update(created_at=timezone.now() - timedelta(hours=2))
    done = call(client, "secsers", action="status", orders=",".join(map(str, ids))).json()
    statuses = {v["status"] for v in done.values()}
    assert statuses <= {"Completed", "Partial"} and "Partial" in statuses  # one order in seven ends partial
    partial = next(v for v in done.values() if v["status"] == "Partial")
    assert int(partial["remains"]) > 0
