import sys

from newsletter.cli.main import main

sys.exit(main(prog_name="python -m newsletter"))
