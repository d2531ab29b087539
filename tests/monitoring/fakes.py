"""Adapters used only by the monitoring tests (the domains bring the real ones)."""

import time

from integrations.adapters import Adapter, HealthCheck, ProviderMeta
from integrations.errors import ProviderUnavailable


class HttpProbeAdapter(Adapter):
    """The base class's real HTTP health check, against the sandbox's generic health endpoint."""

    meta = ProviderMeta(label="HTTP probe", kind="", health=HealthCheck(path="health", timeout=1.0))


class ScriptedAdapter(Adapter):
    """No network: the row's configuration says how the check goes (`fail`: "status"/"error", `sleep_s`)."""

    meta = ProviderMeta(label="Scripted", kind="", health=HealthCheck(timeout=1.0, degraded_after=0.5))

    def check_health(self):
        config = self.integration.configuration or {}
        if config.get("sleep_s"):
            time.sleep(config["sleep_s"])
        if config.get("fail") == "status":
            raise ProviderUnavailable("HTTP 503", status_code=503)
        if config.get("fail") == "error":
            raise ProviderUnavailable("Timed out after 1s.")
