# Test script: records when it starts and ends; its arguments go to args-STEP.txt.
# Stage: Validation
# Dependencies: 0100
# Tags: validation, fast
# Description: Lints the sources.
import os
import sys
import time

step = os.environ["CI_ORCHESTRATOR_STEP_ID"]
with open("events.log", "a") as log:
    log.write(f"start {step} {time.time()}\n")
with open(f"args-{step}.txt", "w") as out:
    out.write("\n".join(sys.argv[1:]))
time.sleep(float(os.environ.get("SEED_SLEEP", "0.3")))
with open("events.log", "a") as log:
    log.write(f"end {step} {time.time()}\n")
