"""``python -m curriculum`` runs the command line (also what ``accelerate launch -m curriculum`` uses)."""

import sys

from curriculum.cli import main

if __name__ == "__main__":
    sys.exit(main())
