"""Fixture files that tests copy and run (playbooks, scripts, whole projects with tests of their
own, one broken on purpose): never collected as this repository's tests."""

collect_ignore_glob = ["*"]
