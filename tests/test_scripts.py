"""The scripts are thin command lines over package functions: importing one must not parse
``sys.argv`` or start work, so argument parsing lives inside functions and a script with a
command line runs it only under ``if __name__ == "__main__":``. Read from the source with ``ast``:
no test loads a script by its file path (the logic tests need is in the package)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def import_time_parsing(tree: ast.Module) -> list[str]:
    """Calls of ``parse_args`` that run when the script is imported: outside every function and class."""
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or _is_main_guard(node):
            continue
        found += [ast.unparse(c) for c in ast.walk(node) if isinstance(c, ast.Call)
                  and isinstance(c.func, ast.Attribute) and c.func.attr in ("parse_args", "parse_known_args")]
    return found


def test_import_time_parsing_is_detected() -> None:
    bad = ast.parse("import argparse\nargs = argparse.ArgumentParser().parse_args()\n")
    good = ast.parse("def main():\n    return parser.parse_args()\nif __name__ == '__main__':\n    main()\n")
    assert import_time_parsing(bad) == ["argparse.ArgumentParser().parse_args()"]
    assert import_time_parsing(good) == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_a_script_does_nothing_at_import(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not import_time_parsing(tree), f"{path.name} parses arguments at import"
    parses = any(isinstance(c, ast.Attribute) and c.attr == "parse_args" for c in ast.walk(tree))
    if parses:  # a command line: run only as a script
        assert any(_is_main_guard(n) for n in tree.body), f"{path.name} has no `if __name__ == \"__main__\":` guard"
