"""The payment providers' simulators, mounted under /sandbox/ when SANDBOX_ENABLED (see
integrations.domain): one module per provider, each with its own `urlpatterns`."""

from django.urls import include, path

urlpatterns = [
    path("moamalat/", include("payments.sandbox.moamalat")),
    path("payment/mobicash/", include("payments.sandbox.mobicash")),
    path("payment/sadad/", include("payments.sandbox.sadad")),
    path("payment/onepay/", include("payments.sandbox.onepay")),
]
