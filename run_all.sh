#!/usr/bin/env bash
# The main job: set up .venv if needed, then detect faces in a photo every install has
# (matplotlib's grace_hopper.jpg) and write results/detections/grace_hopper.json.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh
photo=$(.venv/bin/python -c "import matplotlib.cbook as c; print(c.get_sample_data('grace_hopper.jpg', asfileobj=False))")
mkdir -p results/detections
.venv/bin/mtcnn-lab detect "$photo" --json results/detections/grace_hopper.json --force
echo "wrote results/detections/grace_hopper.json"
