"""`python -m postdesk`: the same command as the `postdesk` script (serve starts its worker process so)."""
import sys

from postdesk.cli import main

sys.exit(main())
