"""One merchant's objects of every kind the API serves, for the suites that attack them (isolation
matrix, fuzzing).

Every text the merchant owns carries CANARY, and every row has its own id, so that an answer showing
any of it to someone else is found by a plain substring search."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.utils import timezone

from integrations.models import IntegrationLog
from monitoring.models import HealthCheck, Incident, Notification, StatusChange
from smm.models import SMMOrder, SMMRefill, SMMService
from smm.providers import create_provider

CANARY = "acanary7f3c"
# Apps whose rows the isolation matrix compares before and after each attack (accounts and tokens too).
OWNED_APPS = ("integrations", "smm", "monitoring", "payments", "shipping", "messaging", "authtoken", "auth")

# Which of the owner's objects a path parameter names, by the path up to and including the parameter.
# A new endpoint with a path parameter needs its line here (the isolation matrix fails until it has one).
PATH_OBJECTS = {
    "/api/smm/providers/{id}": lambda w: w.provider.pk,
    "/api/smm/orders/{id}": lambda w: w.order.pk,
    "/api/integrations/{id}": lambda w: w.integration.pk,
    "/api/integration-logs/{id}": lambda w: w.log.pk,
    "/api/monitoring/health/{id}": lambda w: w.integration.pk,
    "/api/monitoring/incidents/{id}": lambda w: w.incident.pk,
    "/api/monitoring/notifications/{id}": lambda w: w.notification.pk,
    "/api/payments/payments/{id}": lambda w: w.payment.pk,
    "/api/payments/refunds/{id}": lambda w: w.refund.pk,
}


@dataclass
class World:
    owner: object
    provider: object
    service: object
    order: object
    refill: object
    log: object
    check: object
    incident: object
    notification: object
    payment: object = None
    refund: object = None
    markers: set = field(default_factory=set)
    rows: set = field(default_factory=set)  # (model label, pk) of every row that is the owner's

    @property
    def integration(self):
        return self.provider.integration


def build_world(owner, *, tag=CANARY, api_url=None, api_key=None, code="jap"):
    """The merchant's provider with a service, an order with a refill, a logged call, a health check,
    an outage (status change, incident) and the merchant's notice of it; every text carries `tag`."""
    api_url = api_url or f"https://panel.{tag}.example/api/v2"
    api_key = api_key or f"{tag}-key-0001"
    provider = create_provider(owner=owner, name=f"{tag}-panel", display_name=f"{tag} panel",
                               api_url=api_url, api_key=api_key, code=code)
    provider.balance = Decimal("12.34567")
    provider.balance_checked_at = timezone.now()
    provider.save()
    integration = provider.integration
    service = SMMService.objects.create(
        provider=provider, service_id="1", name=f"{tag} followers", type="Default", category="Instagram Followers",
        rate="0.90", min_quantity=50, max_quantity=10000, refill=True, cancel=True,
    )
    order = SMMOrder.objects.create(
        owner=owner, provider=provider, service=service, link=f"https://instagram.com/p/{tag}", quantity=100,
        status="in_progress", external_order_id="9001", charge=Decimal("0.09"), currency="USD",
        submitted_at=timezone.now(),
    )
    refill = SMMRefill.objects.create(order=order, external_refill_id="77", status="pending")
    log = IntegrationLog.objects.create(
        integration=integration, operation="services", endpoint=f"{api_url}#{tag}", method="POST",
        response_status=200, response_body=f'{{"note": "{tag}"}}', request_duration=Decimal("12.5"),
        started_at=timezone.now() - timedelta(seconds=5), completed_at=timezone.now(), user=owner,
    )
    check = HealthCheck.objects.create(integration=integration, status="unhealthy", response_time=12.5,
                                       error=f"{tag} timeout")
    StatusChange.objects.create(integration=integration, old_status="healthy", new_status="unhealthy",
                                error=f"{tag} timeout")
    incident = Incident.objects.create(integration=integration, severity="critical", description=f"{tag} outage")
    notification = Notification.objects.create(user=owner, incident=incident, integration=integration,
                                               title=f"{tag} notice", body=f"{tag} body")
    payment, refund = _payment_and_refund(owner, tag)
    markers = {
        tag, owner.username, owner.email, str(integration.pk), str(log.pk), str(order.reference),
        owner.auth_token.key, payment.reference, str(payment.public_id), refund.reference,
    }
    return World(owner=owner, provider=provider, service=service, order=order, refill=refill, log=log, check=check,
                 incident=incident, notification=notification, payment=payment, refund=refund, markers=markers)


def _payment_and_refund(owner, tag):
    """A cash-on-delivery payment the carrier collected, with a refund waiting for an operator: paid,
    so refunds, refreshes and confirmations of it all reach the services (none calls a provider)."""
    from payments.models import Bank, Payment, PaymentMethod, Refund
    from payments.reference import install

    install(Bank, PaymentMethod)  # a transactional test's flush empties the seed's rows of migration 0002
    payment = Payment.objects.create(
        owner=owner, order_reference=f"{tag}-order", amount=Decimal("150.000"), currency="LYD", method="cod",
        status="paid", next_step="on_delivery", instructions=f"{tag} pay the carrier", paid_at=timezone.now(),
    )
    refund = Refund.objects.create(payment=payment, amount=Decimal("10.000"), status="pending", reason=f"{tag} refund")
    return payment, refund


def _models():
    for label in OWNED_APPS:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        yield from (m for m in config.get_models() if not m._meta.proxy and m._meta.managed)


def snapshot():
    """Every row of the project's tables as it is now: {(model label, pk): values}."""
    rows = {}
    for model in _models():
        for values in model._default_manager.order_by().values():
            rows[(model._meta.label, values[model._meta.pk.attname])] = values
    return rows


def changes(before, after, rows):
    """What happened between two snapshots to `rows` (keys of `before`), and which rows added since
    point at one of them (another merchant's order on this provider, say): a list of lines."""
    lines = []
    for key in rows:
        values = before.get(key)
        if values is None:  # gone already, and said so then
            continue
        now = after.get(key)
        if now is None:
            lines.append(f"{key[0]} {key[1]} deleted")
        elif now != values:
            diff = {k: (values[k], now.get(k)) for k in values if now.get(k) != values[k]}
            lines.append(f"{key[0]} {key[1]} changed: {diff}")
    references = _references()
    for key in after.keys() - before.keys():
        for attname, target in references.get(key[0], ()):
            if (target, after[key][attname]) in rows:
                lines.append(f"{key[0]} {key[1]} added, pointing at {target} {after[key][attname]}")
    return lines


def _references():
    """{model label: [(foreign key attname, target model label)]} for the snapshot's models."""
    return {model._meta.label: [(f.attname, f.related_model._meta.label) for f in model._meta.concrete_fields
                                if f.is_relation and f.related_model is not None]
            for model in _models()}


def missing_id(schema):
    """A well-formed id that names no row, of the type a path parameter's schema says."""
    if schema.get("format") == "uuid":
        return str(uuid.UUID(int=0x0BADC0DE))
    return 987_654_321
