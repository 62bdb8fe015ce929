#!/usr/bin/env bash
# Create benchmarks/.venv-dvc with DVC 3.x (kept apart so its pins never touch gart's env).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DVC_VENV:-$here/.venv-dvc}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/dvc" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet 'dvc[s3]>=3,<4'
fi
"$venv/bin/dvc" --version
