"""`python -m framework.cli`: the `mlops` command line (framework.cli.main)."""

from framework.cli import main

main()
