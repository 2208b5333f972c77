"""Run the CLI with ``python -m ccbridge``."""

from ccbridge.cli import main

main()
