"""Settings as a deployment sees them: real `manage.py` processes with controlled environments."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from ..conftest import ROOT

# Every variable eishro/settings.py reads, so that nothing from the developer's shell leaks in.
SETTINGS_SOURCE = (ROOT / "eishro" / "settings.py").read_text()
SETTING_NAMES = set(re.findall(r"""env\.\w+\(\s*["']([A-Z][A-Z0-9_]*)["']""", SETTINGS_SOURCE))


@pytest.fixture
def environment(tmp_path):
    """The current environment without any setting, reading no `.env`, with its own var directory."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(ENV_FILE="", EISHRO_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    return env


def production(env):
    return {
        **env,
        "DEBUG": "off",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "hub.eishro.ly",
        "CSRF_TRUSTED_ORIGINS": "https://hub.eishro.ly",
        "SANDBOX_ENABLED": "off",
    }


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def assert_refused(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eishro: configuration error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_variables_read_are_found():
    # A guard for SETTING_NAMES: if settings stopped using env.<type>("NAME") the tests would leak.
    assert {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "SANDBOX_ENABLED", "DATABASE_URL"} <= (
        SETTING_NAMES
    )


def test_without_a_secret_key_production_refuses_to_start(environment):
    env = production(environment)
    del env["SECRET_KEY"]
    assert_refused(manage(env, "check"), "SECRET_KEY is not set")


def test_an_empty_secret_key_is_missing_too(environment):
    assert_refused(manage({**production(environment), "SECRET_KEY": ""}, "check"), "SECRET_KEY is not set")


def test_without_encryption_keys_it_refuses_to_start(environment):
    env = production(environment)
    del env["FIELD_ENCRYPTION_KEYS"]
    assert_refused(manage(env, "check"), "FIELD_ENCRYPTION_KEYS is not set")


def test_an_invalid_fernet_key_from_the_env_file_is_refused(environment, tmp_path):
    env_file = tmp_path / "production.env"
    good = Fernet.generate_key().decode()
    env_file.write_text(f"DEBUG=off\nSECRET_KEY={secrets.token_urlsafe(50)}\nFIELD_ENCRYPTION_KEYS={good},not-a-key\n")
    result = manage({**environment, "ENV_FILE": str(env_file)}, "check")
    assert_refused(result, "FIELD_ENCRYPTION_KEYS", "key 2 is not a url-safe base64 32-byte Fernet key")
    assert good not in result.stderr


def test_development_runs_without_a_secret_key(environment):
    env = {**environment, "DEBUG": "on", "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_production_configuration_passes_the_deploy_checks(environment):
    result = manage(production(environment), "check", "--deploy")
    assert result.returncode == 0, result.stderr
    issues = [line for line in result.stderr.splitlines() if line.startswith("?:") or re.match(r"^\S+: \(", line)]
    assert issues == [], result.stderr
    assert "System check identified no issues" in result.stdout


def test_djangos_security_checks_are_clean_in_production(environment):
    result = manage(production(environment), "check", "--deploy", "--tag", "security", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deploy_checks_catch_a_development_configuration(environment):
    # The opposite case, so that the test above cannot pass by checking nothing.
    env = {**production(environment), "DEBUG": "on", "SECRET_KEY": "short"}
    result = manage(env, "check", "--deploy", "--tag", "security")
    assert "security.W018" in result.stderr and "security.W009" in result.stderr


SANDBOX_PROBE = (
    "import django; django.setup()\n"
    "from django.urls import Resolver404, resolve\n"
    "try:\n"
    "    resolve('/sandbox/generic/echo/health')\n"
    "    print('mounted')\n"
    "except Resolver404:\n"
    "    print('absent')\n"
)


@pytest.mark.parametrize(("value", "expected"), [("off", "absent"), ("on", "mounted")])
def test_the_sandbox_is_mounted_only_when_enabled(environment, value, expected):
    env = {**production(environment), "SANDBOX_ENABLED": value, "DJANGO_SETTINGS_MODULE": "eishro.settings"}
    result = subprocess.run([sys.executable, "-c", SANDBOX_PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_the_sandbox_follows_debug_by_default(environment):
    env = {**production(environment), "DJANGO_SETTINGS_MODULE": "eishro.settings"}
    del env["SANDBOX_ENABLED"]
    result = subprocess.run([sys.executable, "-c", SANDBOX_PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "absent", result.stderr
