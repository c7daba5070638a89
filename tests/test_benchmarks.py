"""Benchmarks run after the README's main install: they need the package only, and clean up after themselves."""

import ast
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_only_the_package_and_leaves_no_temporary_folders(path):
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"tests", "pytest", "conftest"}, f"{path.name} imports test code: {imported}"
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "tempfile.mkdtemp" not in calls, f"{path.name} leaves a temporary folder behind"


def test_the_benchmarks_are_found():
    assert {p.name for p in BENCHMARKS} >= {"train_throughput.py", "tvl1_speed.py", "extract_throughput.py"}
