# Stage: Reporting
# Dependencies: 0400, 0402
# Tags: report
import sys

print("report", " ".join(sys.argv[1:]))
