#!/usr/bin/env bash
# Create or reuse .venv. The environment is rebuilt only when the requirement files change
# (their hash is stamped in .venv/.requirements.sha256), so a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
# Headless Chromium for the chat page's end-to-end test (Debian's package; playwright drives it
# with executable_path=/usr/bin/chromium, never a browser build of its own).
# Tried once per checkout (a stamp in var/), not on every ./kgqa command.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [[ ! -f var/.chromium-tried ]]; then
  echo "[setup] installing chromium (Debian package) for the browser test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "[setup] could not install chromium; the browser test will be skipped"
  mkdir -p var && touch var/.chromium-tried
fi
# Opt-in CPU language model (LLM_BACKEND=llamacpp): llama-cpp-python has no prebuilt wheel for
# this Python, so pip builds it (about 20 minutes on 2 cores, once: pip keeps the built wheel).
llamacpp() {
  if [[ "${KGQA_LLAMACPP:-0}" == 1 ]] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    echo "[setup] KGQA_LLAMACPP=1: installing llama-cpp-python (a source build the first time)"
    .venv/bin/python -m pip install --progress-bar on -r requirements-llamacpp.txt
  fi
}
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
stamp=.venv/.requirements.sha256
if [[ -x .venv/bin/python && -f $stamp && "$(cat $stamp)" == "$want" ]]; then
  echo "[setup] .venv is up to date"
  llamacpp
  exit 0
fi
echo "[setup] building .venv (first time takes several minutes)"
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install --upgrade --progress-bar on pip wheel >/dev/null
.venv/bin/python -m pip install --progress-bar on -r requirements.txt
.venv/bin/python -m pip install --progress-bar on --no-deps -r requirements-nodeps.txt
# The project runs from the checkout: a .pth file puts the repo root on sys.path.
.venv/bin/python - <<PY
import pathlib, site
pathlib.Path(site.getsitepackages()[0], "kgqa-checkout.pth").write_text(str(pathlib.Path.cwd()) + "\n")
PY
echo "$want" > "$stamp"
llamacpp
echo "[setup] .venv ready"
