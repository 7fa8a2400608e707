"""`python -m tunebook.cli` runs the CLI too (as `python -m tunebook`)."""

import sys

from tunebook.cli import main

if __name__ == "__main__":
    sys.exit(main())
