"""Entry point of the bundled command line (``rstem``)."""

import sys

from rstem_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
