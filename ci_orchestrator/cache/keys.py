"""What a step instance's cache key is made of, and how two keys' ingredients differ.

The key is a digest of a `Manifest`: the command, shell, working directory, declared env and
matrix values, input globs and the digest of each file they match, output globs and `junit:`
globs (their files are stored with the result and restored with it), the keys of what the
instance waits for, and the cache format version. Paths are workspace-relative, so a
checkout moved elsewhere keeps its keys.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator.cache.digests import digest_bytes, digest_file

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ci_orchestrator.playbook.model import Instance

CACHE_FORMAT = 2  # 2: a stored result holds what the step wrote to its GitHub files

# `json.dumps` given an option builds a new encoder at each call: for each instance, here.
_sorted_json = json.JSONEncoder(sort_keys=True).encode
_value_json = json.JSONEncoder(sort_keys=True, default=str).encode


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """What went into a key. Env values are kept as digests: they may be secrets."""

    version: int
    command: str
    shell: str
    working_directory: str
    env: Mapping[str, str]
    matrix: Mapping[str, str]
    patterns: tuple[str, ...]
    inputs: Mapping[str, str]  # workspace-relative path -> content digest
    outputs: tuple[str, ...]
    upstream: tuple[tuple[str, str], ...]  # (instance id or "", key), sorted by key
    junit: tuple[str, ...] = ()  # the step's own JUnit files: kept with its result as outputs are

    @property
    def stored(self) -> tuple[str, ...]:
        """The globs of the files a stored result holds: its outputs and its JUnit files."""
        return (*self.outputs, *self.junit) if self.junit else self.outputs

    def digest(self) -> str:
        data = self.to_json()
        data["upstream"] = [key for _, key in self.upstream]  # the names only help explain
        return digest_bytes(_sorted_json(data).encode())

    def to_json(self) -> dict[str, Any]:
        # Spelled out rather than dataclasses.asdict, which deep-copies and is slow per instance.
        return {
            "version": self.version,
            "command": self.command,
            "shell": self.shell,
            "working_directory": self.working_directory,
            "env": dict(self.env),
            "matrix": dict(self.matrix),
            "patterns": list(self.patterns),
            "inputs": dict(self.inputs),
            "outputs": list(self.outputs),
            "upstream": [list(pair) for pair in self.upstream],
            # Only when given: the keys of steps without `junit:` stay what they were.
            **({"junit": list(self.junit)} if self.junit else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest | None:
        """The manifest stored by `to_json`, or None when it is not one (an older or damaged value)."""
        try:
            return cls(
                version=int(data["version"]),
                command=str(data["command"]),
                shell=str(data["shell"]),
                working_directory=str(data["working_directory"]),
                env=dict(data["env"]),
                matrix=dict(data["matrix"]),
                patterns=tuple(data["patterns"]),
                inputs=dict(data["inputs"]),
                outputs=tuple(data["outputs"]),
                upstream=tuple((str(name), str(key)) for name, key in data["upstream"]),
                junit=tuple(str(pattern) for pattern in data.get("junit", ())),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def build_manifest(
    instance: Instance,
    *,
    workspace: Path,
    inputs: Mapping[str, str],
    upstream_keys: Mapping[str, str],
    patterns: Sequence[str],
    outputs: Sequence[str],
    junit: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
) -> Manifest:
    """The manifest of an instance whose input files were digested into `inputs`.

    `patterns` and `outputs` are the instance's globs with their expressions evaluated (see
    `instance_patterns`); `upstream_keys` the keys of what it waits for, by instance id;
    `variables` and `secrets` (names) what a job's steps read as `vars`, `inputs`, `github` and
    `secrets`.
    """
    step = instance.step
    command = (
        job_digest(instance, variables or {}, secrets) if step.steps else command_digest(instance, workspace)
    )
    return Manifest(
        version=CACHE_FORMAT,
        command=command,
        shell=step.shell,
        working_directory=_relative(instance.working_directory, workspace),
        env=_env_digests(instance),
        matrix={name: _value_json(value) for name, value in instance.matrix.items()},
        patterns=tuple(patterns),
        inputs=dict(sorted(inputs.items())),
        outputs=tuple(outputs),
        upstream=tuple(sorted(upstream_keys.items(), key=lambda pair: (pair[1], pair[0]))),
        junit=tuple(junit),
    )


def _env_digests(instance: Instance) -> dict[str, str]:
    """The digest of each env value, and of the folders steps before it put on PATH (as
    `GITHUB_PATH`: what `cache explain` names when they change)."""
    env = {name: digest_bytes(value.encode()) for name, value in sorted(instance.env.items())}
    if instance.path:
        env["GITHUB_PATH"] = digest_bytes("\n".join(instance.path).encode())
    return env


def instance_patterns(
    instance: Instance, patterns: Sequence[str], variables: Mapping[str, str]
) -> tuple[str, ...]:
    """The globs with `${{ matrix.* }}`, `${{ env.* }}` and `${{ vars.* }}` evaluated for this
    instance, so each matrix instance can name its own files. ExpressionError when one cannot be."""
    # As expressions.has_expression, without importing the evaluator: most globs are plain.
    if not any("${{" in pattern for pattern in patterns):
        return tuple(patterns)
    from ci_orchestrator.expressions import evaluation

    contexts = {"matrix": dict(instance.matrix), "env": dict(instance.env), "vars": dict(variables)}
    return tuple(evaluation.interpolate(pattern, contexts) for pattern in patterns)


def command_digest(instance: Instance, workspace: Path) -> str:
    """The digest of what runs: the expanded `run` text, the argv, or the script's content and args.

    A relative `script:` path starts at the workspace, as the loader writes it.
    """
    step = instance.step
    if instance.command is not None:
        return digest_bytes(json.dumps(["command", *instance.command]).encode())
    if step.script is not None:
        script = Path(step.script)
        try:
            content = digest_file(workspace / script)
        except FileNotFoundError:
            content = "missing"  # it will fail to start, and failures are never stored
        return digest_bytes(json.dumps(["script", script.suffix, content, *instance.args]).encode())
    run = instance.run if instance.run is not None else step.run or ""
    return digest_bytes(json.dumps(["run", run]).encode())


def job_digest(instance: Instance, variables: Mapping[str, str], secrets: Sequence[str]) -> str:
    """The digest of what a job (a step made of steps) runs: its steps as written (their texts
    are evaluated as each starts), its outputs, the variables and `needs` they may read, and the
    values of the secrets they may read (digested: never stored)."""
    step = instance.step
    steps = [
        [
            one.id, one.name, one.run, one.uses, dict(one.with_), one.shell, one.working_directory,
            dict(one.env), one.condition, one.continue_on_error, one.timeout,
        ]
        for one in step.steps
    ]  # fmt: skip
    values = {name: digest_bytes(os.environ.get(name, "").encode()) for name in secrets}
    needs = dict(instance.needs) if step.reads_needs else {}  # else known by the keys upstream
    data = ["job", steps, dict(step.job_outputs), dict(variables), needs, values]
    return digest_bytes(_value_json(data).encode())


@functools.lru_cache(maxsize=64)  # the same few directories for every instance
def _relative(directory: str, workspace: Path) -> str:
    path = Path(directory)
    if path.is_absolute() and path.is_relative_to(workspace):
        path = path.relative_to(workspace)
    return os.path.normpath(path).replace(os.sep, "/")


def differences(last: Manifest, now: Manifest) -> list[str]:
    """What changed from `last` to `now`, one plain sentence per change."""
    reasons: list[str] = []
    if last.version != now.version:
        reasons.append(f"the cache format changed ({last.version} -> {now.version})")
    if last.command != now.command:
        reasons.append("the command changed")
    if last.shell != now.shell:
        reasons.append(f"the shell changed ({last.shell} -> {now.shell})")
    if last.working_directory != now.working_directory:
        reasons.append(f"the working directory changed ({last.working_directory} -> {now.working_directory})")
    reasons.extend(_changed("env", last.env, now.env))
    reasons.extend(_changed("matrix value", last.matrix, now.matrix))
    if last.patterns != now.patterns:
        reasons.append(f"the inputs globs changed ({list(last.patterns)} -> {list(now.patterns)})")
    reasons.extend(_changed("input", last.inputs, now.inputs))
    if last.outputs != now.outputs:
        reasons.append(f"the outputs globs changed ({list(last.outputs)} -> {list(now.outputs)})")
    if last.junit != now.junit:
        reasons.append(f"the junit globs changed ({list(last.junit)} -> {list(now.junit)})")
    if last.upstream != now.upstream:
        before, after = dict(last.upstream), dict(now.upstream)
        names = sorted(name for name in set(before) | set(after) if name)
        named = [name for name in names if before.get(name) != after.get(name)]
        if named:
            reasons.extend(f"upstream {name} changed" for name in named)
        else:
            reasons.append("the key of a step it waits for changed")
    return reasons


def _changed(what: str, before: Mapping[str, str], after: Mapping[str, str]) -> Iterator[str]:
    for name in sorted(set(before) | set(after)):
        if name not in before:
            yield f"{what} {name} added"
        elif name not in after:
            yield f"{what} {name} removed"
        elif before[name] != after[name]:
            yield f"{what} {name} changed"
