#!/usr/bin/env bash
# Runs the unit tests with as many workers as the orchestrator leaves it.
# Stage: Testing
# Dependencies: 0201, 0202
# Tags: testing
# Timeout: 10m
echo "unit tests with $CI_ORCHESTRATOR_JOBS workers $*"
