"""The core stands alone: no module of `integrations/` imports the project package or a domain app.
Read from the source's syntax tree, so a comment or a string that names an app does not count and an
import written any way does."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_THE_CORE = {"eishro", "smm", "monitoring", "payments", "shipping", "messaging"}
DYNAMIC_IMPORTS = {"import_module", "__import__", "import_string"}


def imported_modules(source, filename="<string>"):
    """(line, dotted name) of every absolute import in `source`, including a dynamic import of a
    literal name (`import_module("x")`, `__import__("x")`, `import_string("x.Y")`)."""
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def forbidden_imports(source, filename="<string>"):
    found = imported_modules(source, filename)
    return sorted((line, name) for line, name in found if name.split(".")[0] in OUTSIDE_THE_CORE)


def test_the_checker_sees_every_way_of_importing():
    source = (
        "import os\n"
        "from . import models\n"
        "from .smm import x  # relative: inside the core\n"
        "# import smm\n"
        "text = 'from monitoring import alerts'\n"
        "from smm.models import SMMOrder\n"
        "import eishro.settings as s\n"
        "def f():\n"
        "    import payments\n"
        "    return importlib.import_module('shipping.carriers')\n"
    )
    assert forbidden_imports(source) == [
        (6, "smm.models"), (7, "eishro.settings"), (9, "payments"), (10, "shipping.carriers"),
    ]


def test_no_module_of_the_core_imports_the_project_or_a_domain_app():
    files = sorted((ROOT / "integrations").rglob("*.py"))
    assert len(files) > 20
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not offenders, "\n".join(offenders)
