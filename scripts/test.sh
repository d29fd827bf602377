#!/usr/bin/env bash
# Install everything and run the test suite.
source "$(dirname "$0")/env.sh"
python -m pytest -q "$@"
