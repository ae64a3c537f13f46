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
    "server stop --all": (None, "Stop every run server of this user, not only this context's."),
    "repro --playbook": (
        "PLAYBOOK",
        "The playbook to rerun, a path or a name in playbooks/ (default: the record's, when it is"
        " one of this project's playbooks by its path or its name).",
    ),
    "repro --var": (
        "KEY=VALUE",
        "A variable for the rerun, in place of the record's. A value of the record that the"
        " playbook does not have is used only when given so. Repeatable.",
    ),
    "repro --matrix": (
        "KEY=V1,V2",
        "A matrix axis's values for the rerun, in place of the record's. Values of the record that"
        " the axis does not list are used only when given so. Repeatable.",
    ),
    "repro --no-cache": (
        None,
        "Neither read nor write the cache: what the instances need runs too (by default it may"
        " come from the cache; the instances rerun always run).",
    ),
    "--force": (None, "Run every step even if cached, and refresh the cache."),
    "--cache-dir": (
        "DIR",
        "The step cache folder (default: $CI_ORCHESTRATOR_CACHE_DIR, else what `config get cache-dir` "
        "prints).",
    ),
    "--timeout": ("DURATION", "Default timeout of each step: seconds, or 90s, 2m, 1h30m."),
    "--fail-fast/--no-fail-fast": (
        None,
        "After a failure, start no new steps (default: the settings' fail-fast, else the "
        "playbook's, else on).",
    ),
    "--shard": ("I/N", "Run only part I of N balanced parts of the plan."),
    "--shard-instances": (
        "JSON",
        "With --shard: the shard's instance ids, a JSON list (a plan --format github-matrix entry's "
        "instances): run those, as the plan that listed them split the playbook.",
    ),
    # Help text is wrapped at hyphens too, which would cut a `.ci-orchestrator/...` path in two: the
    # help of the commands that write reports gives the folder, on a line never rewrapped.
    "--junit": ("PATH", "JUnit XML file (default: junit.xml in the reports folder)."),
    "--summary": ("PATH", "Markdown summary (default: summary.md in the reports folder)."),
    "--json": ("PATH", "JSON run record (default: run.json in the reports folder)."),
    "--output": (
        "grouped|stream|quiet",
        "How step output reaches the console: grouped (each step's whole log as it ends), stream"
        " (lines as they come), quiet (a line per step, and the end of a failed step's log)."
        " Default: the settings' output, else grouped under GitHub Actions, quiet elsewhere.",
    ),
    "--profile": ("NAME", "Settings profile (default: ci under CI, when the settings have one)."),
    "--config": ("PATH", "Settings file to read instead of the working directory's."),
    "--format": ("text|json|mermaid|github-matrix", "What to print."),
    "plan --shards": ("N", "With github-matrix: one entry per shard, N at most."),
    "export --shards": ("N", "Runners to split the run across: at most 256, GitHub's jobs of one matrix."),
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
    "records": (
        "RUN.json...",
        "Run records to merge (run.json of each shard), or folders: every run.json in them.",
    ),
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
    "instance": (
        "INSTANCE|STEP",
        "An instance id, or a step id for its failed instances (default: every failed instance).",
    ),
    "workflow": ("WORKFLOW.yml", "A GitHub workflow file (.github/workflows/NAME.yml)."),
}

# command -> its help, where it says more than a line (the others' is their docstring in cli.py).
# `\b` keeps click from rewrapping the lines after it.
COMMANDS: dict[str, str] = {
    "run": (
        "Run the playbook (or a GitHub workflow's jobs: --select JOB runs one and what it needs).\n\n"
        "\b\nReports: .ci-orchestrator/reports/ (junit.xml, summary.md, run.json)\n"
        "Step logs: .ci-orchestrator/logs/RUN_ID/"
    ),
    "report merge": (
        "Merge run records (from shards) into one JUnit file, one summary and one record.\n\n"
        "\b\nReports: .ci-orchestrator/reports/ (junit.xml, summary.md, run.json)"
    ),
    "repro": (
        "Rerun here the failed instances of a recorded run (or the one named, or a step's failed "
        "ones), with its playbook, matrix values and variables; what they need may come from the cache.\n\n"
        "\b\nReports: .ci-orchestrator/reports/repro/RUN_ID/ (RUN_ID: the record's; never the record read)"
    ),
    "list": (
        "The steps and groups: id, number, name, stage, tags, parallel mode, needs, matrix, inputs, "
        "continue-on-error."
    ),
    "history": (
        "Past runs and their steps, from the local run database; `import` and `export` carry it "
        "between machines (a CI cache)."
    ),
    "export playbook-digest": (
        "Print the SHA-256 of the playbook's file, found as `run` finds it: a key for another system's "
        "cache of the steps' results (the action's actions/cache key)."
    ),
    "server status": (
        "List this user's run servers (each keeps ci-orchestrator loaded for commands started in "
        "its context): pid, version, idle time, the directory of its code; this context's first."
    ),
    "server stop": (
        "Stop this context's run server (the one commands started here use), once the commands it "
        "runs are done; with --all, every run server of this user."
    ),
}
