#!/usr/bin/env bash
# Installs what the tests need.
# Stage: Setup
# Tags: setup, fast
# Order: 1
set -euo pipefail
echo install
