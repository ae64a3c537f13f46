"""The direction of imports: each library in one module, leaves stay leaves, runners never render."""

from __future__ import annotations

import ast

from tests.helpers import REPO

PACKAGE = REPO / "ci_orchestrator"
LIBRARIES = {
    "typer": "cli",
    "yaml": "playbook.nodes",
    "diskcache": "cache.store",
    "junit_xml": "reporters.junit",
    "psutil": "run.process_tree",
    "rich": "reporters.live",
}
EXPRESSIONS = {"expressions.evaluation", "expressions.syntax", "expressions.values"}
LEAVES = {
    "errors",
    "playbook.model",
    "results",
    "plan.graph",
    "units",
    "cpus",
    "playbook.terms",
    "settings.toml_lines",
    "run.events",
    "run.interrupts",
    *EXPRESSIONS,
}
RUNNERS = {
    "run.supervisor",
    "run.process_tree",
    "run.argv",
    "cache.step_cache",
    "cache.keys",
    "cache.entries",
    "cache.store",
    "cache.archives",
    "cache.digests",
}
RUNNERS |= {
    "history.database",
    "run.scheduler",
    "run.capacity",
    "run.process_specs",
    "history.recorder",
    "masking",
    "run.orphans",
    "run.outcomes",
}


def imports() -> dict[str, set[str]]:
    """Module -> what it imports: libraries by top-level name, ours by dotted name under the
    package. Imports under TYPE_CHECKING count too: they are dependencies all the same."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        names = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module}: relative import"
                names.add(node.module or "")
                if node.module == "ci_orchestrator":  # from ci_orchestrator import loader
                    names.update(f"ci_orchestrator.{alias.name}" for alias in node.names)
    prefix = "ci_orchestrator."
    return {module: {name.removeprefix(prefix) for name in names} for module, names in found.items()}


def test_each_library_is_imported_by_one_module_only() -> None:
    for module, names in imports().items():
        for library, owner in LIBRARIES.items():
            if {name.split(".")[0] for name in names} & {library}:
                assert module == owner, f"{module} imports {library}; only {owner} may"


def test_layers_import_downwards_only() -> None:
    found = imports()
    for module, names in found.items():
        ours = names & set(found)
        if module in LEAVES:
            allowed = {"errors", "playbook", "expressions", "run", "plan", "settings"} | (
                EXPRESSIONS if module in EXPRESSIONS else set()
            )
            assert ours <= allowed, f"leaf {module} imports {sorted(ours - allowed)}"
        if module.startswith("reporters"):
            banned = ours & {"run.scheduler", "run.supervisor", "cache.step_cache", "history.database"}
            assert not banned, f"{module} imports {sorted(banned)}"
        if module in RUNNERS:
            rendering = {name for name in ours if name.startswith("reporters")}
            assert not rendering, f"runner {module} imports {sorted(rendering)}"
