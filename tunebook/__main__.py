"""`python -m tunebook` runs the CLI."""

import sys

from tunebook.cli import main

if __name__ == "__main__":
    sys.exit(main())
