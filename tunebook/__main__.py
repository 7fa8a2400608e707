"""`python -m tunebook` runs the CLI."""

import sys

from tunebook.cli import main

sys.exit(main())
