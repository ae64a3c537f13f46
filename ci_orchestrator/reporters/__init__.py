"""Reports of a finished run: JUnit XML, the markdown job summary and the run record."""
