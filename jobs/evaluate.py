"""Ray job entry point: `ray job submit --working-dir . -- python jobs/evaluate.py --config configs/evaluate.yaml`.

Joins the cluster it is submitted to (or one running on this machine), else starts a local Ray.
"""

import sys

from raypf.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--address" not in args:
        args = ["--address", "auto", *args]
    sys.exit(main(["evaluate", *args]))
