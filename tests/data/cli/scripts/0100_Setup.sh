#!/usr/bin/env bash
# Prepares the workspace.
# Stage: Prep
# Tags: setup, fast
echo setup
