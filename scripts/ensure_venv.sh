#!/usr/bin/env bash
# Create ./.venv with the project and its dev tools, or refresh it when pyproject.toml changed.
# Used by run_all.sh and run_tests.sh; safe to run repeatedly (a stamp file skips the install).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: mtcnn-lab needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=.venv/.mtcnn-lab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up .venv (one time; a few minutes)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned to the CPU build that the dev extra needs; an unpinned torch pulls a multi-GB CUDA build
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi
