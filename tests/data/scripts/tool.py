#!/usr/bin/env python3
print("tool")
