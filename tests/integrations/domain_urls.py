"""A URL module that a test declares on a domain app's config, to see where it gets mounted."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("ping/", lambda request: HttpResponse("pong"))]
