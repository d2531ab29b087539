"""The buyer-facing checkout routes, mounted under /pay/ (eishro/urls.py)."""

from django.urls import path

from . import checkout_views as views

urlpatterns = [
    path("assets/<str:name>", views.checkout_asset, name="payment-checkout-asset"),
    path("<uuid:public_id>/", views.checkout_page, name="payment-checkout"),
    path("<uuid:public_id>/refresh/", views.checkout_refresh, name="payment-checkout-refresh"),
    path("<uuid:public_id>/confirm/", views.checkout_confirm, name="payment-checkout-confirm"),
]
