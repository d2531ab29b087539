"""What a domain app declares, in one place.

Every domain app's `AppConfig` subclasses `DomainConfig` and declares what the rest of the system
needs from it: its adapters, its beat schedule entries and start-up jobs, the merchants an outage
affects, its demo data, its sandbox and API routes and its dashboard figures. The project's
schedule, the URL mounts and the dashboard are the sum of these declarations (the helpers at the
end of this module); no app reads another app's models to guess them, and the core imports no
domain app.

Class attributes are read, never mutated: an app overrides them with its own values.
"""

from dataclasses import dataclass

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400


@dataclass(frozen=True)
class Figure:
    """One number on the dashboard. `label` is translatable (gettext_lazy); `tone` is "" (plain),
    "good", "warn" or "bad"."""

    label: str
    value: object
    tone: str = ""


@dataclass(frozen=True)
class FigureBlock:
    """A titled group of figures: one box on the dashboard. `title` is translatable."""

    title: str
    figures: tuple[Figure, ...] = ()


class DomainConfig(AppConfig):
    """The base `AppConfig` of every domain app; each hook below has a safe default."""

    # Django picks an apps.py module's AppConfig by itself only when exactly one subclass there is a
    # candidate, and this base is imported into every apps.py: it is never a candidate itself, its
    # subclasses are (unless they say otherwise).
    default = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "default" not in cls.__dict__:
            cls.default = True

    adapters: dict[str, str] = {}
    """Adapter code -> dotted path of its class (see `integrations.adapters`); imported lazily."""

    schedule: dict[str, tuple[str, int, dict]] = {}
    """Beat entries, `name: (task name, every N seconds, kwargs)`. Names are unique project-wide;
    `install_schedules` creates the missing ones after every migrate and never overwrites an
    operator's edits."""

    startup_tasks: tuple[str, ...] = ()
    """Task names sent once when `make run` starts, so that a newcomer sees their effect at once."""

    sandbox_urls: str | None = None
    """Dotted name of a module with `urlpatterns` simulating this domain's providers, mounted under
    /sandbox/ when SANDBOX_ENABLED is true; None when the app has no simulator."""

    api_urls: str | None = None
    """Dotted name of a module with `urlpatterns`, mounted under /api/<app label>/; None for none."""

    def affected_owners(self, integration):
        """The users with unfinished work on `integration` (an `ExternalIntegration`), whom
        monitoring tells when it goes down: a queryset or an iterable of users. Default: none."""
        from django.contrib.auth import get_user_model

        return get_user_model().objects.none()

    def load_demo(self, merchant, stdout=None):
        """Create this domain's demo rows for the demo `merchant`, pointed at the simulators.
        Idempotent: running it again changes nothing. Writes a line to `stdout` when given.
        Default: nothing."""

    def dashboard_figures(self, since):
        """The figures this domain shows on the operators' dashboard for the period from `since`
        (an aware datetime) to now: a list of `FigureBlock`. Default: none. Shown only to staff
        holding `dashboard_permission`."""
        return []

    dashboard_permission: str | None = None
    """The permission ("app_label.codename") a staff user needs to see this app's dashboard figures:
    the view permission of what they summarise (its change permission grants it too, as in the
    admin). None: the view permission of the app's main model, the first one its models.py
    declares (`get_dashboard_permission`); an app without models shows its figures to superusers
    only."""

    def get_dashboard_permission(self):
        """`dashboard_permission`, or the default it stands for (None for an app without models)."""
        if self.dashboard_permission:
            return self.dashboard_permission
        from django.contrib.auth import get_permission_codename

        main = next(iter(self.get_models()), None)
        if main is None:
            return None
        return f"{main._meta.app_label}.{get_permission_codename('view', main._meta)}"


def domain_configs():
    """Every installed domain app's config, in INSTALLED_APPS order."""
    return [config for config in apps.get_app_configs() if isinstance(config, DomainConfig)]


def beat_schedule():
    """The project's beat schedule: the sum of every domain app's `schedule`. A name declared twice
    is a configuration error, never a silent overwrite."""
    schedule, owner = {}, {}
    for config in domain_configs():
        for name, (task, every, kwargs) in config.schedule.items():
            if name in schedule:
                raise ImproperlyConfigured(
                    f"The beat job {name!r} is declared by both {owner[name]!r} and {config.label!r}."
                )
            schedule[name], owner[name] = (task, every, dict(kwargs)), config.label
    return schedule


def startup_tasks():
    """The task names to send once at start-up, in app order, each once."""
    return tuple(dict.fromkeys(task for config in domain_configs() for task in config.startup_tasks))


def sandbox_url_modules():
    """Dotted names of the simulators' URL modules, mounted under /sandbox/."""
    return [config.sandbox_urls for config in domain_configs() if config.sandbox_urls]


def api_url_modules():
    """{app label: dotted name of its API URL module}, each mounted under /api/<app label>/."""
    return {config.label: config.api_urls for config in domain_configs() if config.api_urls}
