#!/usr/bin/env bash
# Create ./.venv-bench: mtcnn-lab with its ONNX and torch extras plus pymtcnn 1.2.0 (ONNX backend) and
# pyclnf 0.4.1 (scripts/pyclnf_detection_path.py, tests/test_compat_pymtcnn.py compare with them),
# and a writable OpenFace model cache into which pymtcnn converts its ONNX models (2.2.0/derived/).
#
#   benchmarks/setup_bench_env.sh            set up (safe to rerun: a stamp file skips what is done)
#   FORCE=1 benchmarks/setup_bench_env.sh    redo every step
#
# Environment: PYTHON (default python3), OPENFACE_MODELS_DIR (a model cache to start from; used in
# place when writable and outside shared/, else copied), BENCH_MODELS_DIR (where the copy goes;
# default .venv-bench/OpenFaceModels). The chosen cache root is written to
# .venv-bench/openface_models_dir, where benchmarks/bench_backends.py finds it.
#
# Running the conversion means accepting OpenFace's non-commercial research license, like
# `mtcnn-lab models --accept-license`: the weights may be used for academic or non-profit research only.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-bench
PY=$VENV/bin/python
PYMTCNN_SPEC='pymtcnn[onnx]==1.2.0'
PYCLNF_SPEC='pyclnf==0.4.1'
SHARED_MODELS=../shared/OpenFaceModels

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: the bench environment needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
  exit 2
fi
[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"

# ---- 1. packages -----------------------------------------------------------------------------
stamp=$VENV/.bench-installed
want=$( (sha256sum pyproject.toml; echo "$PYMTCNN_SPEC $PYCLNF_SPEC"; sha256sum "$0") | sha256sum | cut -d' ' -f1)
if [ "${FORCE:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $VENV (one time; a few minutes)..." >&2
  "$PY" -m pip install --quiet --upgrade pip
  # torch is pinned (torch==2.13.0 in pyproject.toml); the CPU wheel is used where pip can find it
  "$PY" -m pip install --quiet -e ".[onnx,openvino,torch]"
  # pytest: tests/test_bench.py's pymtcnn smoke test and tests/test_compat_pymtcnn.py's comparison
  "$PY" -m pip install --quiet "$PYMTCNN_SPEC" "$PYCLNF_SPEC" pytest
  # pymtcnn depends on opencv-python, mtcnn-lab on opencv-python-headless: both install the same
  # cv2/ package folder, so whichever is installed last owns the files and uninstalling either one
  # would break cv2 for the other. Reinstalling the headless build (same version as before) last
  # makes cv2 the headless one, consistently, for both packages.
  headless=$("$PY" -m pip show opencv-python-headless 2>/dev/null | sed -n 's/^Version: //p')
  "$PY" -m pip install --quiet --force-reinstall --no-deps "opencv-python-headless==${headless}"
  "$PY" - <<'EOF'
import cv2, numpy as np
img = cv2.resize(np.zeros((8, 8, 3), np.uint8), (4, 4), interpolation=cv2.INTER_AREA)
assert img.shape == (4, 4, 3)
print(f"cv2 {cv2.__version__} from {cv2.__file__}: ok")
EOF
  echo "$want" > "$stamp"
fi

# ---- 2. a writable model cache -----------------------------------------------------------------
writable() {  # root ignores mode bits, so probe by writing
  local probe
  probe=$(mktemp -p "$1" .write-probe.XXXXXX 2>/dev/null) && rm -f "$probe"
}
source_dir=${OPENFACE_MODELS_DIR:-$SHARED_MODELS}
if [ ! -d "$source_dir/2.2.0/originals" ]; then
  echo "error: no OpenFace model cache at $source_dir (expected 2.2.0/originals/...); set OPENFACE_MODELS_DIR" \
       "to one, e.g. after \`mtcnn-lab models --accept-license\`" >&2
  exit 2
fi
source_real=$(realpath "$source_dir")
shared_real=$(realpath -m "$SHARED_MODELS")
case "$source_real" in
  "$shared_real"|"$shared_real"/*) in_shared=1 ;;
  *) in_shared=0 ;;
esac
if [ -n "${OPENFACE_MODELS_DIR:-}" ] && [ "$in_shared" = 0 ] && writable "$source_real"; then
  cache=$source_real
else
  cache=$(realpath -m "${BENCH_MODELS_DIR:-$VENV/OpenFaceModels}")
  if [ ! -d "$cache/2.2.0/originals" ] || [ "${FORCE:-0}" = 1 ]; then
    echo "copying the model cache $source_real -> $cache" >&2
    mkdir -p "$cache"
    cp -r "$source_real/." "$cache/"
    chmod -R u+w "$cache"
  fi
fi
printf '%s\n' "$cache" > "$VENV/openface_models_dir"

# ---- 3. pymtcnn's own conversion of the .dat files into its ONNX models ----------------------------
conv_stamp=$cache/2.2.0/.bench-pymtcnn-converted
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$conv_stamp" ]; then
  echo "converting the OpenFace weights with pymtcnn (accepting OpenFace's non-commercial license)..." >&2
  OPENFACE_MODELS_DIR=$cache "$PY" - "$cache" <<'EOF'
import sys
from pathlib import Path

from pymtcnn.models import ensure_models

paths = ensure_models(accept_license=True, cache_dir=Path(sys.argv[1]))
print(f"pymtcnn models: {paths}")
EOF
  date -u +%Y-%m-%dT%H:%M:%SZ > "$conv_stamp"
fi
echo "bench environment ready: $PY (pymtcnn cache: $cache)"
echo "run: $PY benchmarks/bench_backends.py --limit 3 --repeats 1"
