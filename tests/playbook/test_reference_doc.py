"""docs/playbook.md documents every key the loader accepts, at each level, and no other: its
sections are checked against the loader's own lists of keys, and its examples are read by the
loader itself."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import PlaybookError
from ci_orchestrator.playbook import loader
from ci_orchestrator.playbook.scripts import HEADER_KEYS
from ci_orchestrator.playbook.steps import MATRIX_KEYS, STEP_KEYS
from tests.helpers import REPO

if TYPE_CHECKING:
    from pathlib import Path

DOC = REPO / "docs" / "playbook.md"
# The doc's section for each level of a playbook -> the keys the loader accepts there.
LEVELS = {
    "Playbook keys": loader.PLAYBOOK_KEYS,
    "Step keys": STEP_KEYS,
    "Matrix keys": MATRIX_KEYS,
    "`defaults` keys": loader.DEFAULTS_KEYS,
    "Group keys": loader.GROUP_KEYS,
    "Script header keys": HEADER_KEYS,
}
KEY_HEADING = re.compile(r"^### `([^`]+)`$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sections() -> dict[str, str]:
    """The text under each `## ` heading, by heading."""
    parts = re.split(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def subsections(text: str) -> dict[str, str]:
    """The text under each "### `key`" heading of a section, by key."""
    parts = KEY_HEADING.split(text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_has_a_heading_for_every_key_the_loader_accepts_and_no_other(level: str) -> None:
    text = sections()[level]
    assert sorted(subsections(text)) == sorted(LEVELS[level])


@pytest.mark.parametrize("level", LEVELS)
def test_a_summary_table_lists_the_same_keys(level: str) -> None:
    rows = TABLE_ROW.findall(sections()[level])
    assert not rows or sorted(rows) == sorted(LEVELS[level])


@pytest.mark.parametrize("level", [level for level in LEVELS if level != "Script header keys"])
def test_every_key_has_an_example(level: str) -> None:
    for key, text in subsections(sections()[level]).items():
        examples = YAML_BLOCK.findall(text)
        assert examples, f"{level}: `{key}` has no example"
        assert any(re.search(rf"(^|[\s{{]){re.escape(key)}:", example, re.M) for example in examples), (
            f"{level}: the example of `{key}` does not use it"
        )


def examples() -> list[str]:
    return YAML_BLOCK.findall(DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize("index", range(len(examples())))
def test_the_loader_knows_every_key_an_example_uses(tmp_path: Path, index: int) -> None:
    """Each example is a playbook or a piece of one: whatever else it lacks (a name, the steps
    it needs), the loader finds no unknown key in it."""
    example = examples()[index]
    path = tmp_path / "playbook.yml"
    path.write_text(example, encoding="utf-8")
    try:
        loader.load_playbook(path)
    except PlaybookError as error:
        unknown = [problem for problem in error.problems if "unknown key" in problem.message]
        assert not unknown, f"example {index}:\n{example}\n{error}"


def test_the_first_playbook_is_valid(tmp_path: Path) -> None:
    first = YAML_BLOCK.findall(sections()["A first playbook"])[0]
    path = tmp_path / "ci.yml"
    path.write_text(first, encoding="utf-8")
    playbook = loader.load_playbook(path)
    assert [step.id for step in playbook.steps] == ["install", "lint", "test"]


def test_the_guides_link_the_reference() -> None:
    assert "](playbook.md" in (REPO / "docs" / "github-actions.md").read_text(encoding="utf-8")
    assert "(docs/playbook.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a markdown text (a repeated one gets `-1`, ...)."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, count = slug, 0
        while anchor in found:
            count += 1
            anchor = f"{slug}-{count}"
        found.add(anchor)
    return found


def test_the_links_into_the_reference_find_their_heading() -> None:
    known = anchors(DOC.read_text(encoding="utf-8"))
    for guide, prefix in ((DOC, ""), (REPO / "docs" / "github-actions.md", "playbook.md")):
        text = guide.read_text(encoding="utf-8").replace("\n", " ")
        for anchor in re.findall(rf"\]\({re.escape(prefix)}#([^)]+)\)", text):
            assert anchor in known, f"{guide.name}: no heading for #{anchor}"
