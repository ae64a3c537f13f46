"""ci-orchestrator: run a project's CI steps from a YAML playbook."""

__version__ = "0.1.0"
