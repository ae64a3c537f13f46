"""`python -m ci_orchestrator`."""

from ci_orchestrator.cli import main

if __name__ == "__main__":
    main()
