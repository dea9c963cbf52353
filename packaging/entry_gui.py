"""Entry point of the bundled desktop application (``rstem-gui``)."""

import sys

from rstem_app.main import main

if __name__ == "__main__":
    sys.exit(main())
