#!/usr/bin/env bash
# Loads shared state, so it must run with nothing beside it.
# Stage: Testing
# Dependencies: 0100
# Tags: testing
# AllowParallel: false
echo "module tests alone: parallel=$CI_ORCHESTRATOR_PARALLEL"
