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
  match        only to calls whose parameters (form or query) have these values: {"action": "add"}
  after        the simulator acts first, then its answer is lost as the other keys say (a 502 from
               a proxy, a hang past the caller's timeout): the provider did what was asked and
               the caller cannot know it
Without the cache a simulator answers without faults (it must not fail the calls it simulates).
"""

import functools
import json
import random
import time

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .cache_outage import CACHE_ERRORS

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
    try:
        return cache.get(_key(kind, code)) or {}
    except CACHE_ERRORS:
        return {}


def _take(kind, code, spec):
    if "times" not in spec:
        return True
    try:
        left = cache.decr(_key(kind, code) + ":left")
    except ValueError:
        return False
    except CACHE_ERRORS:
        return False
    return left >= 0


def _matches(request, spec):
    params = request.POST if request.method == "POST" else request.GET
    return all(str(params.get(name, "")) == str(value) for name, value in (spec.get("match") or {}).items())


def active_fault(kind, code, request=None):
    """The fault spec for (kind, code) if it applies to this call (counting it against `times`)."""
    spec = get_fault(kind, code)
    if not spec or (request is not None and not _matches(request, spec)) or not _take(kind, code, spec):
        return None
    return spec


def faulty_response(kind, code, request=None):
    """Apply the fault for (kind, code); return a response to send instead, or None to go on."""
    spec = active_fault(kind, code, request)
    if spec is None or spec.get("after"):
        return None
    return fault_answer(spec)


def fault_answer(spec):
    """What the fault `spec` does to an answer: a response to send instead, or None."""
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
            spec = active_fault(kind, kwargs.get("code", ""), request)
            if spec is None:
                return view(request, *args, **kwargs)
            if spec.get("after"):
                answer = view(request, *args, **kwargs)
                return fault_answer(spec) or answer
            return fault_answer(spec) or view(request, *args, **kwargs)

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
