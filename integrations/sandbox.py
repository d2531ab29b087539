"""The sandbox framework: fault injection shared by every domain's simulators.

Faults live in the shared cache so that a test, a benchmark or an operator can switch them on for
a simulator served by another process. A fault spec (all keys optional):
  latency_ms   sleep before answering
  hang_s       sleep this long (longer than the caller's timeout simulates a hang)
  status       answer with this HTTP status instead
  error_rate   probability (0–1) that `status` applies (default 1)
  malformed    answer with a truncated JSON body
  html         answer with an HTML error page (what a panel does on a bad key)
  times        apply to the next N calls only
"""

import functools
import json
import random
import time

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

FAULT_TTL = 3600


def _key(kind, code):
    return f"sandbox:fault:{kind}:{code}"


def set_fault(kind, code, **spec):
    cache.set(_key(kind, code), spec, timeout=FAULT_TTL)
    if "times" in spec:
        cache.set(_key(kind, code) + ":left", int(spec["times"]), timeout=FAULT_TTL)


def clear_fault(kind, code):
    cache.delete_many([_key(kind, code), _key(kind, code) + ":left"])


def get_fault(kind, code):
    return cache.get(_key(kind, code)) or {}


def _take(kind, code, spec):
    if "times" not in spec:
        return True
    try:
        left = cache.decr(_key(kind, code) + ":left")
    except ValueError:
        return False
    return left >= 0


def faulty_response(kind, code):
    """Apply the fault for (kind, code); return a response to send instead, or None to go on."""
    spec = get_fault(kind, code)
    if not spec or not _take(kind, code, spec):
        return None
    if spec.get("latency_ms"):
        time.sleep(spec["latency_ms"] / 1000)
    if spec.get("hang_s"):
        time.sleep(spec["hang_s"])
    if spec.get("status") and random.random() < float(spec.get("error_rate", 1)):
        return JsonResponse({"error": "Simulated failure"}, status=int(spec["status"]))
    if spec.get("malformed"):
        return HttpResponse('{"status": "ok", "data": [1, 2', content_type="application/json")
    if spec.get("html"):
        return HttpResponse("<html><body><h1>Error</h1></body></html>", content_type="text/html")
    return None


def simulated(kind):
    """Decorate a simulator view taking `code`: faults for (kind, code) are applied first."""

    def decorator(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            return faulty_response(kind, kwargs.get("code", "")) or view(request, *args, **kwargs)

        return wrapper

    return decorator


@csrf_exempt
def faults_view(request, kind, code):
    if request.method == "POST":
        try:
            spec = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "body must be a JSON object"}, status=400)
        set_fault(kind, code, **spec)
    elif request.method == "DELETE":
        clear_fault(kind, code)
    return JsonResponse(get_fault(kind, code))


@simulated("generic")
def health_view(request, code):
    """A health endpoint for providers whose domain simulator has none of its own."""
    return JsonResponse({"status": "ok", "provider": code})


urlpatterns = [
    path("_faults/<str:kind>/<str:code>/", faults_view, name="sandbox-faults"),
    path("generic/<str:code>/health", health_view, name="sandbox-generic-health"),
]
