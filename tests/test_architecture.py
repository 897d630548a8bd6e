"""Conventions that keep the code base honest (see docs/conventions.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


class TestPylti1p3StaysBehindLti:
    def test_nothing_outside_lti_imports_pylti1p3(self) -> None:
        offenders = [
            str(path.relative_to(ROOT))
            for folder in ("app", "modules", "migrations")
            for path in (ROOT / folder).rglob("*.py")
            if any(name.split(".")[0] == "pylti1p3" for name in _imports(path))
        ]
        assert offenders == []

    def test_lti_package_does_use_it(self) -> None:
        assert any(
            "pylti1p3" in name for path in (ROOT / "lti").rglob("*.py") for name in _imports(path)
        )


class TestNoCreateAll:
    def test_app_never_creates_tables_itself(self) -> None:
        for folder in ("app", "lti", "modules"):
            for path in (ROOT / folder).rglob("*.py"):
                assert "create_all(" not in path.read_text(encoding="utf-8"), path
