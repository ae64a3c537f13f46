#!/bin/sh
# Stage: Broken
# AllowParallel: sometimes
# Timeout: soon
# Dependencies: 0001, abc
echo bad
