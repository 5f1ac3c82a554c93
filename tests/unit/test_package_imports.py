"""Each package under libs/ and services/ declares what it imports, and no service is imported
by another package (issue 11: a service installs and ships alone).

The imports are read statically (ast), every one in the package's source, including those
inside functions: a lazy import still needs its distribution installed. Import names become
distributions through importlib.metadata (this test runs in the workspace environment, where
everything is installed).

Rules, for each package:

- Every import is of the standard library, of the package itself, or of a distribution the
  package declares. A package that declares lorag-core or lorag-api may also import what *that
  lib* declares directly (pydantic, faststream, psycopg-pool, fastapi, httpx, ...): those libs
  are the shared kernel whose signatures are made of those types, so a service must use the
  versions the kernel pins, and repeating the bounds in five files would let them drift.
  Only one level: a dependency of a dependency (starlette under fastapi, numpy under
  sentence-transformers) must be declared by the package that imports it. The check reads the
  declared graph every run, so if a lib drops a dependency that a service imports, it fails.
- An import guarded by `try/except ImportError`, under `if TYPE_CHECKING:`, or named in
  `importlib.util.find_spec("x")` is optional: it needs no declaration (the code runs without
  it), but it counts as a use of a declared dependency.
- Every declared dependency is used, or is in RUNTIME_ONLY with the reason it is needed.
- No package imports or depends on a service package other than itself.

Each check returns the problems it finds, so the checks also run against small broken examples
at the end: a check that cannot fail would prove nothing.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Libs whose own direct dependencies the packages that declare them may import (see above).
LENDING_LIBS = ("lorag-core", "lorag-api")

# Declared dependencies that nothing imports by name but that the package needs at run time.
RUNTIME_ONLY: dict[tuple[str, str], str] = {
    ("lorag-rag-service", "onnx"): (
        "torch.onnx.export writes the question encoder's graph with it, imported by torch"
    ),
    ("lorag-gateway", "python-multipart"): (
        "FastAPI parses form posts and dataset uploads with it, without an import by name"
    ),
    ("lorag-lora-service", "python-multipart"): (
        "FastAPI parses the fine-tuning API's file uploads (/v1/files) with it, without an import"
    ),
}


def canonicalize_name(name: str) -> str:
    """A distribution name as the registries compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution a PEP 508 requirement names ("psycopg[binary]>=3.2" -> psycopg)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"not a requirement: {requirement!r}"
    return canonicalize_name(match[1])


@dataclass(frozen=True)
class Package:
    """A workspace member: its distribution name, import name, folder and declared deps."""

    name: str
    module: str
    directory: Path
    dependencies: frozenset[str]

    @property
    def is_service(self) -> bool:
        return self.directory.parent.name == "services"


@dataclass(frozen=True)
class Import:
    """One imported module (dotted), where, and whether the code runs without it."""

    module: str
    where: str
    optional: bool


def load_package(directory: Path) -> Package:
    project = tomllib.loads((directory / "pyproject.toml").read_text())
    name = canonicalize_name(project["project"]["name"])
    module = project["tool"]["uv"]["build-backend"]["module-name"]
    declared = frozenset(map(requirement_name, project["project"].get("dependencies", [])))
    return Package(name, module, directory, declared)


@functools.cache
def workspace() -> dict[str, Package]:
    """Every member under libs/ and services/, by distribution name."""
    folders = sorted([*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")])
    packages = [load_package(path.parent) for path in folders]
    return {package.name: package for package in packages}


def service_modules(packages: dict[str, Package]) -> dict[str, str]:
    """Import name -> distribution name of every service package."""
    return {p.module: p.name for p in packages.values() if p.is_service}


# ------------------------------------------------------------------------------------------
# Reading imports
# ------------------------------------------------------------------------------------------

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    if caught is None:
        return True
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    """Every absolute import in a module, marking the ones the code can run without."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.optional_depth = 0
        self.found: list[Import] = []

    def _add(self, module: str, node: ast.AST, optional: bool = False) -> None:
        optional = optional or self.optional_depth > 0
        self.found.append(Import(module, f"{self.where}:{getattr(node, 'lineno', 0)}", optional))

    def _visit_optional(self, nodes: Iterable[ast.AST]) -> None:
        self.optional_depth += 1
        for node in nodes:
            self.visit(node)
        self.optional_depth -= 1

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return  # relative: the package itself
        for alias in node.names:
            # `from a import b` may import the submodule a.b (it matters in namespace packages)
            self._add(node.module if alias.name == "*" else f"{node.module}.{alias.name}", node)

    def visit_Try(self, node: ast.Try) -> None:
        if any(_catches_import_error(h) for h in node.handlers):
            self._visit_optional(node.body)
        else:
            for child in node.body:
                self.visit(child)
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._visit_optional(node.body)
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.util.find_spec("x") / importlib.import_module("x"): a use by name
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0] if node.args else None
        if (
            called in ("find_spec", "import_module")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            self._add(first.value, node, optional=called == "find_spec")
        self.generic_visit(node)


def imports_in(source: str, where: str) -> list[Import]:
    collector = _ImportCollector(where)
    collector.visit(ast.parse(source, filename=where))
    return collector.found


def sources_of(package: Package) -> dict[str, str]:
    """Relative path -> text of every Python file the package ships."""
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for path in sorted((package.directory / "src").rglob("*.py"))
    }


def imports_of(sources: dict[str, str]) -> list[Import]:
    return [found for where, text in sources.items() for found in imports_in(text, where)]


# ------------------------------------------------------------------------------------------
# Import names -> distributions
# ------------------------------------------------------------------------------------------


@functools.cache
def _top_level_owners() -> dict[str, frozenset[str]]:
    owners = importlib.metadata.packages_distributions()
    return {top: frozenset(canonicalize_name(d) for d in dists) for top, dists in owners.items()}


@functools.cache
def _files_of(distribution: str) -> frozenset[str]:
    files = importlib.metadata.distribution(distribution).files or []
    return frozenset(str(f) for f in files)


def _narrow(module: str, candidates: frozenset[str]) -> frozenset[str]:
    """In a namespace package (opentelemetry.*), the distributions that hold `module`."""
    parts = module.split(".")
    for size in range(len(parts), 1, -1):
        path = "/".join(parts[:size])
        holders = frozenset(
            d
            for d in candidates
            if any(f == f"{path}.py" or f.startswith(f"{path}/") for f in _files_of(d))
        )
        if holders:
            return holders
    return candidates


def distributions_of(module: str, packages: dict[str, Package]) -> frozenset[str] | None:
    """Distributions that provide `module`: empty for the standard library, None if unknown."""
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names:
        return frozenset()
    lorag = {p.module: p.name for p in packages.values()}
    if top in lorag:
        return frozenset({lorag[top]})
    candidates = _top_level_owners().get(top)
    if not candidates:
        return None
    return _narrow(module, candidates) if len(candidates) > 1 else candidates


# ------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------


def allowed_for(package: Package, packages: dict[str, Package]) -> frozenset[str]:
    """What the package may import: its own declarations plus those the lending libs lend."""
    lent = [
        packages[lib].dependencies
        for lib in LENDING_LIBS
        if lib in package.dependencies and lib in packages
    ]
    return package.dependencies.union(*lent, {package.name})


def undeclared_problems(
    package: Package, found: list[Import], packages: dict[str, Package]
) -> list[str]:
    """Required imports whose distribution the package does not declare (one line each)."""
    allowed = allowed_for(package, packages)
    problems: dict[str, str] = {}
    for use in found:
        if use.optional:
            continue
        owners = distributions_of(use.module, packages)
        if owners is None:
            key = use.module.partition(".")[0]
            problems.setdefault(key, f"{use.where}: no installed distribution provides {key}")
        elif owners and not owners & allowed:
            key = min(owners)
            problems.setdefault(
                key,
                f"{use.where}: imports {use.module} ({', '.join(sorted(owners))}), which "
                f"{package.name} does not declare",
            )
    return list(problems.values())


def unused_problems(
    package: Package, found: list[Import], packages: dict[str, Package]
) -> list[str]:
    """Declared dependencies nothing in the package imports and RUNTIME_ONLY does not explain."""
    used: set[str] = set()
    for use in found:
        used |= distributions_of(use.module, packages) or set()
    return [
        f"{package.name} declares {dependency}, which nothing in it imports: drop it (or add "
        "it to RUNTIME_ONLY with the reason it is needed)"
        for dependency in sorted(package.dependencies - used)
        if (package.name, dependency) not in RUNTIME_ONLY
    ]


def boundary_problems(
    package: Package, found: list[Import], packages: dict[str, Package]
) -> list[str]:
    """Imports of, and dependencies on, another service package."""
    services = service_modules(packages)
    by_line: dict[str, str] = {}  # one line per import statement, not per imported name
    for use in found:
        top = use.module.partition(".")[0]
        if top in services and services[top] != package.name:
            by_line.setdefault(
                use.where,
                f"{use.where}: imports {use.module}, a module of {services[top]}; call its API "
                "through lorag_api instead",
            )
    problems = list(by_line.values())
    problems += [
        f"{package.name} depends on the service package {dependency}"
        for dependency in sorted(package.dependencies & set(services.values()) - {package.name})
    ]
    return problems


# ------------------------------------------------------------------------------------------
# The real packages
# ------------------------------------------------------------------------------------------

PACKAGE_NAMES = sorted(workspace())


def test_the_workspace_is_found() -> None:
    names = set(PACKAGE_NAMES)
    assert {"lorag-core", "lorag-api", "lorag-cli", "lorag-gateway", "lorag-rag-service"} <= names
    assert set(service_modules(workspace())) == {
        "lorag_rag",
        "lorag_lora",
        "lorag_hybrid",
        "lorag_migration",
        "lorag_gateway",
    }


@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_every_import_is_declared(name: str) -> None:
    package = workspace()[name]
    found = imports_of(sources_of(package))
    problems = undeclared_problems(package, found, workspace())
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_every_dependency_is_used(name: str) -> None:
    package = workspace()[name]
    found = imports_of(sources_of(package))
    problems = unused_problems(package, found, workspace())
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_no_package_reaches_into_a_service(name: str) -> None:
    package = workspace()[name]
    found = imports_of(sources_of(package))
    problems = boundary_problems(package, found, workspace())
    assert problems == [], "\n".join(problems)


def test_runtime_only_entries_are_still_declared() -> None:
    packages = workspace()
    stale = [
        (name, dependency)
        for name, dependency in RUNTIME_ONLY
        if name not in packages or dependency not in packages[name].dependencies
    ]
    assert stale == []


# ------------------------------------------------------------------------------------------
# The checks themselves catch mistakes
# ------------------------------------------------------------------------------------------


def _example(
    name: str, dependencies: Iterable[str], directory: str = "services/example"
) -> Package:
    return Package(
        canonicalize_name(name), "lorag_example", ROOT / directory, frozenset(dependencies)
    )


def _problems(package: Package, source: str) -> list[str]:
    packages = {**workspace(), package.name: package}
    found = imports_in(source, "example.py")
    return [
        *undeclared_problems(package, found, packages),
        *unused_problems(package, found, packages),
        *boundary_problems(package, found, packages),
    ]


@pytest.mark.parametrize(
    ("dependencies", "source", "expected"),
    [
        pytest.param(
            ["lorag-core"],
            "import yaml\n",
            "imports yaml (pyyaml), which lorag-example does not declare",
            id="undeclared",
        ),
        pytest.param(
            ["lorag-core", "fastapi"],
            "import fastapi\nfrom starlette.types import ASGIApp\n",
            "imports starlette.types.ASGIApp (starlette)",
            id="a dependency's dependency",
        ),
        pytest.param(
            ["lorag-core", "httpx"],
            "import lorag_core\n",
            "declares httpx, which nothing in it imports",
            id="unused",
        ),
        pytest.param(
            ["lorag-core", "lorag-rag-service"],
            "import lorag_core\nfrom lorag_rag import retrieval\n",
            "imports lorag_rag.retrieval, a module of lorag-rag-service",
            id="another service",
        ),
        pytest.param(
            ["lorag-core", "lorag-rag-service"],
            "import lorag_core\nfrom lorag_rag import retrieval\n",
            "depends on the service package lorag-rag-service",
            id="depends on a service",
        ),
        pytest.param(
            ["lorag-core"],
            "import lorag_core\ndef f():\n    from lorag_lora.tiny import build\n",
            "imports lorag_lora.tiny.build",
            id="lazy import of a service",
        ),
        pytest.param(
            ["lorag-core"],
            "import lorag_core\nfrom opentelemetry.exporter.otlp.proto.grpc import x\n",
            "(opentelemetry-exporter-otlp-proto-grpc)",
            id="namespace package",
        ),
        pytest.param(
            ["pydantic"],
            "import pydantic\nimport aiokafka\n",
            "imports aiokafka (aiokafka), which lorag-example does not declare",
            id="lent only to who declares the lib",
        ),
    ],
)
def test_checks_catch(dependencies: list[str], source: str, expected: str) -> None:
    problems = _problems(_example("lorag-example", dependencies), source)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("dependencies", "source"),
    [
        pytest.param(
            ["lorag-core"],
            "import os\nimport lorag_core\nimport pydantic\nfrom faststream.kafka import K\n",
            id="lent by lorag-core",
        ),
        pytest.param(
            ["lorag-core"],
            "import lorag_core\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n",
            id="optional import",
        ),
        pytest.param(
            ["lorag-core"],
            "import lorag_core\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import numpy\n",
            id="type checking only",
        ),
        pytest.param(
            ["lorag-core", "pyyaml"],
            "import lorag_core\nimport importlib.util\nimportlib.util.find_spec('yaml')\n",
            id="find_spec is a use",
        ),
        pytest.param(
            ["lorag-core", "opentelemetry-sdk"],
            "import lorag_core\nfrom opentelemetry.sdk.trace import TracerProvider\n",
            id="namespace package declared",
        ),
    ],
)
def test_checks_accept(dependencies: list[str], source: str) -> None:
    assert _problems(_example("lorag-example", dependencies), source) == []
