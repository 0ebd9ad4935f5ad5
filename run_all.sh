#!/usr/bin/env bash
# The main job: set up .venv if needed, run every numbered notebook headless (papermill) into
# results/notebooks/, and let them write results/tables/*.json|csv and results/figures/*.pdf|png.
#   ./run_all.sh                 full run
#   ./run_all.sh --quick         small smoke run
#   ./run_all.sh -p manifest /data/study/manifest.json     notebook parameters, passed through
#   ./run_all.sh --only 05       only some notebooks
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh
exec .venv/bin/mtcnn-lab workbench "$@"
