"""What `--help` says of each option and argument of the command line: the form of its value (its
metavar: `PATH`, `N|auto`, the choices) and one sentence. Kept here, by option name, so that the
command declarations in cli.py (still the only typer user) read as a list of options.

A key is the option's long name, or `COMMAND --name` where one command's option differs from
another's of the same name.
"""

from __future__ import annotations

# name -> (metavar, None for a flag; help)
OPTIONS: dict[str, tuple[str | None, str]] = {
    "--concurrency": (
        "N|auto",
        "Most step processes at once; auto: the CPUs this process may use (default: the "
        "playbook's, else auto; the smallest limit given wins).",
    ),
    "--sequential": (None, "One step at a time, in plan order."),
    "--select": (
        "EXPR",
        "Run only these steps and what they need. Comma-separated terms: an id or script number "
        "(0407), a range (0400-0499), a wildcard (test-*), stage:NAME, tag:NAME, group:NAME; !TERM "
        "leaves steps out. Repeatable.",
    ),
    "--only": (None, "With --select: do not add what the selected steps need."),
    "--matrix": (
        "KEY=V1,V2",
        "Run a matrix axis with these values only; values it does not list replace its own. Repeatable.",
    ),
    "--var": ("KEY=VALUE", "Set a playbook variable (vars.KEY). Repeatable."),
    "--dry-run": (None, "Show the plan; run nothing."),
    "--no-cache": (None, "Neither read nor write the cache."),
    "plan --no-cache": (None, "Do not look at the cache."),
    "--force": (None, "Run every step even if cached, and refresh the cache."),
    "--cache-dir": (
        "DIR",
        "The step cache folder (default: $CI_ORCHESTRATOR_CACHE_DIR, else what `config get cache-dir` "
        "prints).",
    ),
    "--timeout": ("DURATION", "Default timeout of each step: seconds, or 90s, 2m, 1h30m."),
    "--fail-fast/--no-fail-fast": (None, "After a failure, start no new steps (default: on)."),
    "--shard": ("I/N", "Run only part I of N balanced parts of the plan."),
    # Help text is wrapped at hyphens too, which would cut a `.ci-orchestrator/...` path in two: the
    # help of the commands that write reports gives the folder, on a line never rewrapped.
    "--junit": ("PATH", "JUnit XML file (default: junit.xml in the reports folder)."),
    "--summary": ("PATH", "Markdown summary (default: summary.md in the reports folder)."),
    "--json": ("PATH", "JSON run record (default: run.json in the reports folder)."),
    "--output": (
        "grouped|stream|quiet",
        "How step output reaches the console (default: the settings' output, else grouped).",
    ),
    "--profile": ("NAME", "Settings profile (default: ci under CI, when the settings have one)."),
    "--config": ("PATH", "Settings file to read instead of the working directory's."),
    "--format": ("text|json|mermaid|github-matrix", "What to print."),
    "plan --shards": ("N", "With github-matrix: one entry per shard, N at most."),
    "export --shards": ("N", "Runners to split the run across."),
    "--max-size": (
        "SIZE",
        "Evict least recently used entries down to this size, e.g. 500MB, 2GiB (default: the "
        "cache-size setting).",
    ),
    "compare --format": ("markdown|json", "How to print the comparison."),
    "--mode": ("always|failures|changes|off", "When to comment: always, when something failed or changed."),
    "--pr": ("N", "The pull request (default: the event's)."),
    "--baseline": (
        "RUN.json|auto|none",
        "The run to compare with (default auto: under a pull request the base branch's newest "
        "run, else the previous run here).",
    ),
    "--limit": ("N", "How many runs to list (default 20) or to export (default 100)."),
    "--value": (None, "Print the value alone, a folder as an absolute path (for scripts)."),
    "--version": (None, "Print the version."),
    "--event": ("NAME", "A GitHub workflow's event: github.event_name (default push)."),
    "--input": ("KEY=VALUE", "A GitHub workflow's input: inputs.KEY. Repeatable."),
    "--secret": (
        "NAME",
        "A GitHub workflow's secret secrets.NAME, read from the environment, masked. Repeatable.",
    ),
    "--job": ("ID", "Only this job of a GitHub workflow, and the jobs it needs. Repeatable."),
}

# parameter -> (metavar, help); usage shows a metavar in [ ] when the argument is optional.
ARGUMENTS: dict[str, tuple[str, str]] = {
    "playbook": ("PLAYBOOK", "A playbook path, or a name in playbooks/ (default: playbooks/ci.yml)."),
    "playbooks": ("PLAYBOOK...", "Playbook paths or names (default: playbooks/ci.yml)."),
    "records": ("RUN.json...", "Run records to merge (run.json of each shard)."),
    "explain": ("[PLAYBOOK] STEP", "A playbook (default: playbooks/ci.yml) and a step id."),
    "history": (
        "show RUN_ID|import FILE|export FILE",
        "Show the steps of one run instead of the list; import or export runs (the action carries them).",
    ),
    "key": ("KEY", "A setting name, e.g. concurrency."),
    "record": ("RUN.json", "A run record, e.g. downloaded from a CI run."),
    "base": ("BASE.json", "The baseline run record."),
    "head": ("HEAD.json", "The run record to compare (default: the last run's)."),
    "comment record": ("RUN.json", "The run record to report (default: the last run's)."),
    "instance": ("INSTANCE", "One instance id (default: every failed one)."),
    "workflow": ("WORKFLOW.yml", "A GitHub workflow file (.github/workflows/NAME.yml)."),
}
