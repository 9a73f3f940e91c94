"""``python -m pmr_stream.cli`` = ``pmr``."""

import sys

from pmr_stream.cli import main

sys.exit(main())
