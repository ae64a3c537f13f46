#!/usr/bin/env bash
# Test script: records when it starts and ends, so tests can check the order.
# Stage: Validation
# Dependencies: 0100
# Tags: validation
# AllowParallel: true
echo "start $CI_ORCHESTRATOR_STEP_ID $(date +%s.%N)" >> events.log
sleep "${SEED_SLEEP:-0.3}"
echo "end $CI_ORCHESTRATOR_STEP_ID $(date +%s.%N)" >> events.log
