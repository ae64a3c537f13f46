#!/usr/bin/env bash
# Prepares the workspace the other scripts use.
# Stage: Setup
# Tags: setup
# Description: Creates the scratch folder.
mkdir -p .ci-orchestrator/scripts-demo
echo "prepared (run $CI_ORCHESTRATOR_RUN_ID)"
