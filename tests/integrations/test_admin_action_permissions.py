"""Every admin action declares the permission it needs (issue 11, point 7), for every ModelAdmin
registered on the site, the hub's and other apps' alike: one added tomorrow without a permission
fails here.

For each registered model: every action declares a permission beyond "view"; a staff user who may only
view the rows is offered no action, and a forged POST of each action runs nothing (the action is
replaced by a spy that records calls) and, on the hub's admins, gets an error message saying why;
a superuser's forged POST does reach the action (so the refusal is not an accident of the request)."""

import functools
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.contrib.messages import ERROR, get_messages
from django.test import RequestFactory
from django.urls import reverse

from integrations.admin import ActionPermissionsMixin
from tests.staff import admin_client_for, staff_with

pytestmark = pytest.mark.django_db

HUB_APPS = {"integrations", "smm", "monitoring", "payments", "shipping", "messaging"}
MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)
# Custom admin views (a ModelAdmin's URLs beyond Django's own), each reviewed for its permission
# check: "app_label.Model": {route: the test that pins it}. None today.
REVIEWED_ADMIN_VIEWS = {}


def label(model):
    return model._meta.label


def spy_on_actions(monkeypatch, modeladmin):
    """Replace every action of `modeladmin` by a recorder keeping its name, description and permissions."""
    calls = []
    real = modeladmin.get_action

    def recorder(func, name):
        @functools.wraps(func)  # keeps allowed_permissions: Django filters on it
        def spy(modeladmin, request, queryset):
            calls.append(name)

        return spy

    def get_action(action):
        found = real(action)
        if found is None:
            return None
        func, name, description = found
        return recorder(func, name), name, description

    monkeypatch.setattr(modeladmin, "get_action", get_action)
    for name, func in list(modeladmin.admin_site.actions):  # site-wide ones (delete_selected)
        monkeypatch.setitem(modeladmin.admin_site._actions, name, recorder(func, name))
    return calls


def missing_pk(model):
    internal = model._meta.pk.get_internal_type()
    if internal == "UUIDField":
        return str(uuid.uuid4())
    if "Integer" in internal or "AutoField" in internal:
        return "987654"
    return "no-such-row"


def request_by(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_every_action_declares_a_permission_beyond_view(model):
    modeladmin = admin.site._registry[model]
    for func, name, _description in modeladmin._get_base_actions():
        permissions = set(getattr(func, "allowed_permissions", ()) or ())
        assert permissions - {"view"}, f"{label(model)}: the action {name!r} declares no permission beyond view"
        for permission in permissions:
            assert callable(getattr(modeladmin, f"has_{permission}_permission", None)), (label(model), name)


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_a_view_only_user_is_offered_no_action_and_a_forged_one_runs_nothing(model, monkeypatch, staff):
    modeladmin = admin.site._registry[model]
    names = [name for _func, name, _description in modeladmin._get_base_actions()]
    if not names:
        pytest.skip("no action")
    opts = model._meta
    viewer = staff_with("viewer", f"{opts.app_label}.{get_permission_codename('view', opts)}")
    assert modeladmin.has_view_permission(request_by(viewer))
    assert modeladmin.get_actions(request_by(viewer)) == {}

    calls = spy_on_actions(monkeypatch, modeladmin)
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    client = admin_client_for(viewer)
    for name in names:
        response = client.post(url, {"action": name, "index": 0, "_selected_action": [missing_pk(model)]},
                               follow=True)
        assert response.status_code == 200, (name, response.status_code)
        assert calls == [], f"{label(model)}: {name!r} ran for a view-only user"
        if isinstance(modeladmin, ActionPermissionsMixin):
            errors = [str(m) for m in get_messages(response.wsgi_request) if m.level == ERROR]
            assert len(errors) == 1 and "permission" in errors[0], (name, errors)

    # The same forged POST by someone allowed reaches the action: the refusal above is the permission's.
    allowed = modeladmin.get_actions(request_by(staff))
    client = admin_client_for(staff)
    for name in names:
        if name not in allowed:  # switched off for everybody (e.g. has_delete_permission is False)
            continue
        client.post(url, {"action": name, "index": 0, "_selected_action": [missing_pk(model)]})
        assert calls[-1:] == [name], (label(model), name)


@pytest.mark.parametrize("model", [m for m in MODELS if m._meta.app_label in HUB_APPS], ids=label)
def test_the_hubs_admins_refuse_forged_actions_with_a_message_and_add_no_unreviewed_view(model):
    modeladmin = admin.site._registry[model]
    assert isinstance(modeladmin, ActionPermissionsMixin), f"{label(model)}'s admin lacks ActionPermissionsMixin"
    standard = {str(p.pattern) for p in admin.ModelAdmin(model, admin.site).get_urls()}
    extra = {str(p.pattern) for p in modeladmin.get_urls()} - standard
    reviewed = set(REVIEWED_ADMIN_VIEWS.get(label(model), {}))
    assert extra <= reviewed, f"{label(model)}: custom admin views to review for permissions: {extra - reviewed}"


def test_other_apps_actions_that_declared_no_permission_are_guarded():
    """django-celery-beat runs and toggles periodic tasks, django-axes deletes attempts: both declared
    no permission, so any viewer could run them; the hub registers them again with one."""
    from axes.models import AccessAttempt
    from django_celery_beat.models import PeriodicTask

    tasks = admin.site._registry[PeriodicTask]
    assert {name: func.allowed_permissions for func, name, _d in tasks._get_base_actions()} == {
        "delete_selected": ["delete"], "enable_tasks": ["change"], "disable_tasks": ["change"],
        "toggle_tasks": ["change"], "run_tasks": ["change"],
    }
    attempts = admin.site._registry[AccessAttempt]
    assert dict((n, f.allowed_permissions) for f, n, _d in attempts._get_base_actions())["cleanup_expired_attempts"] \
        == ["delete"]
