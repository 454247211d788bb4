#!/usr/bin/env bash
# Headless Chromium for the review page's browser test (tests/test_page.py), from Debian's `chromium`
# package where apt-get is available. Elsewhere the test is skipped and says how to get it: nothing here
# may fail the test command.
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } \
    || echo "note: could not install chromium; the review page's browser test will be skipped"
else
    echo "note: no chromium (and no apt-get as root); the review page's browser test will be skipped"
fi
exit 0
