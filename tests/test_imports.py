"""The layout and the direction of imports: the package reads as a run flows, each library is
imported in one module, leaves stay leaves, runners never render, the CLI sits on top."""

from __future__ import annotations

import ast

from tests.helpers import REPO

PACKAGE = REPO / "ci_orchestrator"
LIBRARIES = {
    "typer": "cli",
    "yaml": "playbook.nodes",
    "diskcache": "cache.disks",
    "junit_xml": "reporters.junit",
    "junitparser": "run.junit_parsing",
    "psutil": "run.process_tree",
    "rich": "reporters.live",
}
# Lowest first: a module imports from its own package or from lower ranks only.
RANKS = (
    {"", "errors", "ci", "notices", "results", "units", "cpus", "output"},  # leaves
    {"expressions"},  # the expression language, over plain data
    {"playbook"},  # readers
    {"workflows"},  # GitHub workflows read into playbooks
    {"settings"},
    {"matrix"},  # shapers
    {"plan"},
    {"cache"},  # runners
    {"history"},
    {"run"},
    {"reporters"},  # see only finished results
    {"options"},
    {"pipeline", "commands"},  # the spine and the commands beside it
    {"server"},  # a client hands the command to a run server (`server status` and `stop` too)
    {"cli"},
    {"server.daemon", "server.worker", "__main__"},  # what runs the CLI: the entry point, a server's worker
)
LEAVES = RANKS[0]
TOP_LEVEL_MODULES_AT_MOST = 12
LINES_AT_MOST = 450


def part(module: str) -> str:
    """The package (or top-level module) a module belongs to."""
    return module.split(".", maxsplit=1)[0]


def rank(module: str) -> int:
    """A module's own rank where it has one, else its package's."""
    exact = [index for index, names in enumerate(RANKS) if module in names]
    return exact[0] if exact else next(index for index, names in enumerate(RANKS) if part(module) in names)


def is_ours(dotted: str) -> bool:
    """Whether `dotted` (under the package) names one of its modules or packages."""
    path = PACKAGE.joinpath(*dotted.split(".")) if dotted else PACKAGE
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports() -> dict[str, set[str]]:
    """Module -> what it imports: ours by dotted name under the package ("" for the package
    itself), libraries as `!name`. Imports under TYPE_CHECKING and inside functions count too:
    they are dependencies all the same."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = (
            ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix("__init__").rstrip(".")
        )
        names = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                dotted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module}: relative import"
                base = node.module or ""
                # from ci_orchestrator.plan import graph: the module plan.graph
                dotted = [
                    f"{base}.{alias.name}" for alias in node.names if is_ours(_inner(f"{base}.{alias.name}"))
                ]
                dotted = dotted or [base]
            else:
                continue
            for name in dotted:
                ours = name == "ci_orchestrator" or name.startswith("ci_orchestrator.")
                names.add(_inner(name) if ours else f"!{name.split('.')[0]}")
    return found


def _inner(name: str) -> str:
    return name.removeprefix("ci_orchestrator").removeprefix(".")


def ours(names: set[str], modules: dict[str, set[str]]) -> set[str]:
    return {name for name in names if not name.startswith("!")}


def test_every_module_has_a_rank() -> None:
    unranked = sorted(module for module in imports() if not any(part(module) in names for names in RANKS))
    assert not unranked, f"give these a rank in RANKS: {unranked}"


def test_each_library_is_imported_by_one_module_only() -> None:
    for module, names in imports().items():
        for library, owner in LIBRARIES.items():
            if f"!{library}" in names:
                assert module == owner, f"{module} imports {library}; only {owner} may"


def test_imports_point_down_only() -> None:
    modules = imports()
    for module, names in modules.items():
        for name in ours(names, modules):
            if part(name) == part(module) and part(module) not in LEAVES and rank(name) == rank(module):
                continue  # within one package
            assert rank(name) <= rank(module), f"{module} imports {name}, which sits above it"


def test_leaves_import_nothing_of_ours_but_errors_ci_and_output() -> None:
    modules = imports()
    for module in modules:
        if part(module) in LEAVES and module:
            # `output/workflow_commands` is the one rule of what GitHub's runner reads as a
            # command: every printer of text uses it, warnings too, and it asks `ci` whether
            # GitHub's runner is reading.
            allowed = ("errors", "", "output", "ci")
            found = {name for name in ours(modules[module], modules) if part(name) not in allowed}
            assert not found, f"leaf {module} imports {sorted(found)}"
    for module, names in modules.items():
        if part(module) == "expressions":
            found = {name for name in ours(names, modules) if part(name) not in ("expressions", "errors")}
            assert not found, f"{module}: the expression language imports {sorted(found)}"


def test_reporters_see_only_finished_results() -> None:
    """Reporters read results, masking and the like, never the readers, planners or runners."""
    modules = imports()
    for module, names in modules.items():
        if part(module) == "reporters":
            found = {name for name in ours(names, modules) if part(name) not in LEAVES | {"reporters"}}
            assert not found, f"{module} imports {sorted(found)}"


def test_options_are_plain_values() -> None:
    """The effective options are merged from readers' values; the pipeline builds the
    scheduler's limits, the cache and the reports from them."""
    modules = imports()
    found = {name for name in ours(modules["options"], modules) if rank(name) > rank("settings")}
    assert not found, f"options imports {sorted(found)}"


def test_the_cli_sits_on_top() -> None:
    modules = imports()
    for module, names in modules.items():
        if "cli" in names:
            assert rank(module) > rank("cli"), f"{module} imports the CLI"


def test_the_layout_reads_as_the_data_flows() -> None:
    top_level = sorted(
        path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py", "__main__.py")
    )
    assert len(top_level) <= TOP_LEVEL_MODULES_AT_MOST, top_level
    packages = [path for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()]
    assert len(packages) >= 6
    for package in packages:
        # Importing a package must cost nothing: start-up time is a measured figure.
        assert (package / "__init__.py").read_text(encoding="utf-8") == "", f"{package.name}/__init__.py"
    for path in PACKAGE.rglob("*.py"):
        assert path.stem == path.stem.lower() and "-" not in path.stem, path
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= LINES_AT_MOST, f"{path.relative_to(PACKAGE)}: {lines} lines"
