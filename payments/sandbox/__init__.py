"""The payment providers' simulators, mounted under /sandbox/ when SANDBOX_ENABLED (see
integrations.domain): one module per provider, each with its own `urlpatterns`."""

from django.urls import include, path

urlpatterns = [
    path("moamalat/", include("payments.sandbox.moamalat")),
]
