"""Every SMM panel adapter implements one interface, `smm.interface.SmmPanel`."""

import inspect

import pytest
from django.apps import apps

from smm.interface import SmmPanel
from smm.panel import PanelV2

OPERATIONS = [
    "services", "add", "status", "statuses", "fetch_statuses", "read_statuses",
    "refill", "refills", "refill_status", "refill_statuses", "cancel", "balance",
]


def test_the_panel_interface_declares_the_operations_and_implements_none():
    declared = [name for name, value in vars(SmmPanel).items() if inspect.isfunction(value)]
    assert declared == OPERATIONS
    panel = SmmPanel(integration=None)
    for name in OPERATIONS:
        method = getattr(panel, name)
        assert len(inspect.getdoc(method).splitlines()) == 1, name
        arguments = ["x"] * sum(
            p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
            for p in inspect.signature(method).parameters.values()
        )
        with pytest.raises(NotImplementedError):
            method(*arguments)


def test_panel_v2_implements_every_operation_with_the_interfaces_signature():
    assert issubclass(PanelV2, SmmPanel)
    assert set(apps.get_app_config("smm").adapters.values()) == {"smm.panel.PanelV2"}
    for name in OPERATIONS:
        assert getattr(PanelV2, name) is not getattr(SmmPanel, name), name
        assert inspect.signature(getattr(PanelV2, name)) == inspect.signature(getattr(SmmPanel, name)), name
