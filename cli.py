"""Run the command line from a checkout (``python cli.py ...``); installed, the command is ``bowlrp``."""
import sys

from bowlrp.cli import main

if __name__ == "__main__":
    sys.exit(main())
