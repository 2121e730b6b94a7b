"""`python -m app.cli`: the `rlhf-registry` command where the console script is not installed."""

from app.cli import main

if __name__ == "__main__":
    main()
