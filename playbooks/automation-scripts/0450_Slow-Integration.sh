#!/usr/bin/env bash
# Stage: Testing
# Dependencies: 0400
# Tags: testing, slow
echo "integration"
