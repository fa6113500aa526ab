"""What .importlinter cannot say by itself: that app.py only re-exports, and that no dependency escapes its lists."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_app_py_only_re_exports_the_functions_of_the_edge():
    tree = ast.parse((ROOT / "app.py").read_text())

    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    definitions = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]

    assert [node.module for node in imports if isinstance(node, ast.ImportFrom)] == ["chalicelib.edge.functions"]
    assert not [node for node in imports if isinstance(node, ast.Import)]
    assert definitions == []


def test_every_runtime_dependency_is_named_in_the_domains_forbidden_list():
    contracts = configparser.ConfigParser()
    contracts.read(ROOT / ".importlinter")
    forbidden = set(contracts["importlinter:contract:pure-domain"]["forbidden_modules"].split())
    top_level = importlib.metadata.packages_distributions()

    for requirement in _requirements(ROOT / "requirements.txt"):
        modules = {module for module, distributions in top_level.items() if requirement in _names(distributions)}
        assert modules, f"{requirement} is not installed"
        assert modules & forbidden, f"{requirement} ({sorted(modules)}) is missing from .importlinter's lists"


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [re.split(r"[\[=<>~ ]", line)[0].lower() for line in lines if line]


def _names(distributions: list[str]) -> set[str]:
    return {name.lower().replace("_", "-") for name in distributions}
