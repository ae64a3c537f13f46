# Stage: Validation
# AllowParallel: true
print("lint")
