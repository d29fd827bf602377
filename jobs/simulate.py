"""Ray job entry point: `ray job submit --working-dir . -- python jobs/simulate.py --config configs/simulate.yaml`."""

import sys

from raypf.cli import main

if __name__ == "__main__":
    sys.exit(main(["simulate", *sys.argv[1:]]))
