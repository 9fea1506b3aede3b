import sys

from newsletter.cli.entry import main

sys.exit(main(prog_name="python -m newsletter"))
