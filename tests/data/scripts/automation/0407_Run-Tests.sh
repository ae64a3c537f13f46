#!/usr/bin/env bash
# Stage: Testing
# Dependencies: 0401, 402
# Tags: tests
# AllowParallel: false
# Timeout: 20m
# Description: Runs the unit tests.
# Author: someone (an unknown key, ignored)
echo "tests $*"
# Stage: Not-a-header (after the code starts)
