"""`python -m c2m` runs the CLI."""

from c2m.cli import main

main()
