"""Benchmarks of ci-orchestrator against make, go-task, doit, turbo, xargs and GNU parallel."""
