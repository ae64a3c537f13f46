#!/usr/bin/env bash
# Stage: Build
echo build
