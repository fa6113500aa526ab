"""Where the tooling lives: localstack/ is a folder that hides nothing of LocalStack, and only tests import tests."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCALSTACK_VENV_PYTHON = REPO / ".venv-localstack" / "bin" / "python"
# Everything that ships or runs outside the test suite.
NOT_TESTS = ("app.py", "bench", "chalicelib", "examples", "localstack")


def test_the_localstack_folder_is_no_package():
    assert not (REPO / "localstack" / "__init__.py").exists()
    spec = importlib.util.find_spec("localstack")
    # .venv has no LocalStack, so the folder may still be found, but only as a namespace portion: no code of its
    # own runs on `import localstack`, and an installed LocalStack's modules are found beside it.
    assert spec is None or (spec.origin is None and spec.loader is None), spec


@pytest.mark.skipif(not LOCALSTACK_VENV_PYTHON.exists(), reason="no .venv-localstack (make .venv-localstack)")
def test_from_the_repository_root_the_real_localstack_is_imported_and_nothing_of_it_is_shadowed():
    # LocalStack's own package is a namespace too, so the folder joins it as a portion: a name in the folder
    # that LocalStack also has would hide LocalStack's module.
    script = (
        "import importlib.util, localstack\n"
        "print(importlib.util.find_spec('localstack.runtime.main').origin, *localstack.__path__, sep='\\n')"
    )
    found = subprocess.run(
        [str(LOCALSTACK_VENV_PYTHON), "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    main, portions = Path(found[0]), {(REPO / line).resolve() for line in found[1:]}

    assert main.is_relative_to(REPO / ".venv-localstack")
    ours = REPO / "localstack"
    theirs = set().union(*(_importable(portion) for portion in portions - {ours}))
    assert _importable(ours) & theirs == set()


def test_nothing_outside_tests_imports_tests():
    importers = [
        f"{path.relative_to(REPO)}: {module}"
        for path in _python_files(NOT_TESTS)
        for module in _imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    ]

    assert importers == []


def _importable(folder: Path) -> set[str]:
    """The submodule names a namespace portion offers: its folders and Python files."""
    return {
        entry.stem
        for entry in folder.iterdir()
        if (entry.is_dir() and entry.name != "__pycache__") or entry.suffix in (".py", ".so")
    }


def _python_files(names: tuple[str, ...]) -> Iterator[Path]:
    for name in names:
        path = REPO / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
