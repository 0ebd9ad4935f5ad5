#!/usr/bin/env bash
# The test command: set up .venv if needed, lint (ruff, then the import contracts of pyproject.toml:
# the data flow, the runtime apart from the lab, no cycles), then run the whole test suite.
# pytest exits 5 when it collected no tests; set -e makes that a failure too.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh
.venv/bin/python -m ruff check .
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
