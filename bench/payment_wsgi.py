"""The WSGI application the payment benchmarks serve with gunicorn: the project's own URLs plus one
bench-only bare view (`/bench/bare/`), so that a notification's cost can be compared with the least a
Django request costs on the same server, middleware included. Never mounted in production."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")

import django
from django.conf import settings

django.setup()

from django.http import JsonResponse  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402


@csrf_exempt
@require_POST
def bare(request):
    """What the webhook answers, without verifying, storing or applying anything."""
    request.body  # noqa: B018 - read it, as the receiver does
    return JsonResponse({"Message": "Success", "Success": True})


urlpatterns = [path("bench/bare/", bare), path("", include("eishro.urls"))]
settings.ROOT_URLCONF = __name__

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
