"""A package imports only the packages below it (docs/architecture.md), at module level."""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "portside"

# bottom first; a unit may import any unit before it
LAYERS = ["errors", "units", "readers", "timefmt", "oci", "events", "fsync", "content", "archive", "snapshots", "streams", "unpack", "images", "busybox", "distribution",
          "volumes", "cgroups", "runtime", "network", "containers", "build",
          "daemon", "registry", "cli"]
# the CLI is a client of the API: it may not reach into the engine at all
CLI_MAY_IMPORT = {"errors", "oci", "cli", "__init__", "units", "streams"}
# ...and these pure modules: `build` filters the context by .dockerignore on the client side, as docker's CLI does
CLI_MAY_IMPORT_MODULES = {"portside.build.dockerignore"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:  # module level only: a lazy import inside a function is a deliberate seam
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m for m in found if m == "portside" or m.startswith("portside.")]


FILES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    rel = path.relative_to(SRC)
    unit = rel.parts[0].removesuffix(".py")
    if unit in ("__init__", "__main__"):
        return
    assert unit in LAYERS, f"{rel}: add its package to LAYERS in this test and to docs/architecture.md"
    for module in _module_imports(path):
        target = _unit(module)
        if target == "__init__" or target == unit:
            continue
        if unit == "cli":
            assert target in CLI_MAY_IMPORT or module in CLI_MAY_IMPORT_MODULES, f"{rel} imports {module}: the CLI talks to the engine only over the API"
        assert LAYERS.index(target) < LAYERS.index(unit), f"{rel} imports {module}, which is above it"
