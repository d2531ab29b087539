"""A provider adapter used only by the foundation's tests (the domains bring real ones)."""

from integrations.adapters import Adapter, CredentialField, HealthCheck, ProviderMeta


class EchoAdapter(Adapter):
    meta = ProviderMeta(
        label="Echo test provider",
        kind="analytics",
        credentials=(
            CredentialField("api_key"),
            CredentialField("webhook_secret"),
            CredentialField("username", secret=False, required=False),
        ),
        health=HealthCheck(path="health", timeout=2.0),
        timeout=3.0,
    )
    handled = []

    def handle_webhook(self, event):
        payload = event.payload
        if payload.get("explode"):
            raise ValueError("handler failed on purpose")
        # The effect a real adapter would have: here, a marker in the provider's configuration.
        seen = list(self.integration.configuration.get("seen_events", []))
        seen.append(event.event_id)
        type(self.integration).objects.filter(pk=self.integration.pk).update(
            configuration={**self.integration.configuration, "seen_events": seen}
        )
