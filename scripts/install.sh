#!/usr/bin/env bash
# Install dlhistory into ./.venv (idempotent), and Fashion-MNIST from Debian's package where apt exists.
# torch is pinned by constraints.txt and never replaced: an existing torch in the venv is kept; else a
# wheel already on disk is used, else the CPU build (on a machine without an NVIDIA GPU), else PyPI's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"

stamp="$VENV/.dlhistory-installed"
want=$("$PY" -c "import hashlib; print(hashlib.sha256(open('pyproject.toml','rb').read()
      + open('constraints.txt','rb').read() + open('requirements-nodeps.txt','rb').read()).hexdigest())")
# (portable: no sha256sum on macOS)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        "${PIP[@]}" install --no-index -c constraints.txt torch 2>/dev/null \
        || { ! command -v nvidia-smi >/dev/null 2>&1 && "${PIP[@]}" install --retries 1 --timeout 30 \
                -c constraints.txt torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; } \
        || "${PIP[@]}" install -c constraints.txt torch
    fi
    "${PIP[@]}" install -c constraints.txt -e ".[test]"
    "${PIP[@]}" install --no-deps -r requirements-nodeps.txt
    echo "$want" > "$stamp"
fi

# Fashion-MNIST: Debian ships it as dataset-fashion-mnist; elsewhere the loader downloads it on first use.
fashion=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fashion" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; } \
    || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST will be downloaded on first use"
fi

# tcmalloc: the command line preloads it (dlhistory/allocator.py); Debian ships it as libtcmalloc-minimal4.
if ! ls /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4 >/dev/null 2>&1 \
   && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1; }; } \
    || echo "note: could not install libtcmalloc-minimal4; glibc's malloc is used"
fi
