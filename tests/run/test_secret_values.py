"""What a run masks: the values its steps get for the names in `secrets`, whoever set them, and
the variables those values are made of."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ci_orchestrator.expressions.evaluation import keys_read
from ci_orchestrator.options import Selection
from ci_orchestrator.pipeline import prepare
from ci_orchestrator.run.secret_values import secret_values

if TYPE_CHECKING:
    from pathlib import Path


def masked(workdir: Path, playbook: str, *variables: str, base_env: dict[str, str] | None = None) -> set[str]:
    (workdir / "p.yml").write_text(textwrap.dedent(playbook))
    plan = prepare(Selection(playbook="p.yml", variables=variables), root=workdir).plan
    return set(secret_values(plan, base_env=base_env or {}).masks)


def test_the_value_a_step_gets_is_masked_wherever_it_was_set(workdir: Path) -> None:
    playbook = """\
        name: p
        secrets: [TOKEN, CALLER]
        env: {TOKEN: from-playbook}
        steps:
          - {id: a, run: "true"}
          - {id: b, run: "true", env: {TOKEN: from-step}}
        """
    found = masked(workdir, playbook, base_env={"TOKEN": "from-caller", "CALLER": "only-caller"})
    # The caller's TOKEN reaches no step: the playbook's env comes over it.
    assert found == {"from-playbook", "from-step", "only-caller"}


def test_variables_that_make_a_secret_are_secrets(workdir: Path) -> None:
    playbook = """\
        name: p
        secrets: [AUTH, CHAINED, FROM_MATRIX]
        vars: {USER: plain-user, PASS: default-pass, HOST: not-secret, M: m-value, DEEP: deep-value}
        env: {INNER: "${{ vars.DEEP }}"}
        steps:
          - id: a
            run: "true"
            env:
              AUTH: "${{ format('{0}:{1}', vars.user, vars['PASS']) }}"
              CHAINED: "x-${{ env.INNER }}"
              URL: "${{ vars.HOST }}"
          - id: m
            run: "true"
            matrix: {k: ["${{ vars.M }}"]}
            env: {FROM_MATRIX: "${{ matrix.k }}-z"}
        """
    found = masked(workdir, playbook, "PASS=given-pass")
    assert found == {
        "plain-user:given-pass",
        "plain-user",
        "given-pass",
        "x-deep-value",
        "deep-value",
        "m-value-z",
        "m-value",
    }


def test_a_secret_reading_every_variable_makes_them_all_secret(workdir: Path) -> None:
    playbook = """\
        name: p
        secrets: [ALL]
        vars: {A: one-value, B: two-value}
        steps:
          - {id: a, run: "true", env: {ALL: "${{ toJSON(vars) }}"}}
        """
    assert {"one-value", "two-value"} <= masked(workdir, playbook)


def test_keys_read_by_name_or_any() -> None:
    assert keys_read("a ${{ vars.Tok }} ${{ env['X'] }} ${{ matrix.k == 'v' }}") == {
        "vars": frozenset({"tok"}),
        "env": frozenset({"x"}),
        "matrix": frozenset({"k"}),
    }
    assert keys_read("${{ vars[env.K] }}") == {"vars": None, "env": frozenset({"k"})}
    assert keys_read("${{ toJSON(vars) }} ${{ vars.*.x }} plain") == {"vars": None}
    assert keys_read("plain") == {}
