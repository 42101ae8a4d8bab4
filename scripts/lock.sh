#!/usr/bin/env bash
# Re-lock the requirements: requirements.txt -> requirements.lock and requirements-dev.txt ->
# requirements-dev.lock, every package (transitive ones included) at one exact version with its
# hashes. Existing pins are kept unless a requirement file asks otherwise; KGQA_LOCK_UPGRADE=1
# moves every package to its newest allowed version. pip-tools runs from a throwaway venv of its
# own, never from the product's environment.
#
# torch: requirements.txt says torch==2.13.0; pip finds the CPU build (2.13.0+cpu) in /opt/wheels
# through this machine's pip configuration, so the lock pins torch==2.13.0+cpu with that wheel's
# hash. Run this script where that wheel store is configured, or the lock would name the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
tools=${TMPDIR:-/tmp}/kgqa-lock-tools
if [[ ! -x $tools/bin/pip-compile ]]; then
  "$PY" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet pip-tools==7.7.0
fi
export CUSTOM_COMPILE_COMMAND=scripts/lock.sh
opts=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links)
[[ "${KGQA_LOCK_UPGRADE:-0}" == 1 ]] && opts+=(--upgrade)
# runtime first: requirements-dev.txt takes the runtime pins from requirements.lock (-c)
"$tools/bin/pip-compile" "${opts[@]}" --output-file=requirements.lock requirements.txt
"$tools/bin/pip-compile" "${opts[@]}" --output-file=requirements-dev.lock requirements-dev.txt
if grep -q '^nvidia-' requirements.lock; then
  echo "[lock] requirements.lock names CUDA packages: torch did not resolve to the local CPU wheel" >&2
  exit 1
fi
echo "[lock] requirements.lock and requirements-dev.lock written"
