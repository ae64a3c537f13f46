#!/usr/bin/env bash
# Stage: Validation
# Dependencies: 0100
# Tags: validation, fast
echo "format ok"
