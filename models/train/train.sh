#!/usr/bin/env bash
# Train fanout's demo models (npm run models:train). Installs Debian's python3-sklearn,
# python3-onnx and python3-torch if missing (about 1 GB on disk; no PyPI needed), then runs
# train.py with Debian's interpreter. Extra arguments go to train.py (e.g. --out /tmp/models).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3   # not a pyenv/venv python first on PATH: Debian's modules live here

missing=()
[ -x "$PY" ] && "$PY" -c 'import sklearn' 2>/dev/null || missing+=(python3-sklearn)
[ -x "$PY" ] && "$PY" -c 'import onnx' 2>/dev/null || missing+=(python3-onnx)
[ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null || missing+=(python3-torch)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

# One thread everywhere: float sums in a fixed order, so the .onnx files are byte-identical.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 BLIS_NUM_THREADS=1
export PYTHONHASHSEED=0
exec "$PY" "$here/train.py" "$@"
