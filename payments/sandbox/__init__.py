"""The payment providers' simulators, mounted under /sandbox/ when SANDBOX_ENABLED (see
integrations.domain): one module per provider, each with its own `urlpatterns`."""

from django.urls import include, path  # noqa: F401 - each simulator adds its path

urlpatterns = [
]
