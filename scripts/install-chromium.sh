#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser.py) when it is missing.
# Called by `make test` / `make browser`. Under CI=true a failure is an error; elsewhere a warning
# (the browser tests then skip, saying why).
set -uo pipefail
BIN="${MODELSYNC_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$BIN" ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
if command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (apt-get)..."
  if $SUDO apt-get install -y -q chromium >/tmp/modelsync-apt.log 2>&1 \
     || { $SUDO apt-get update -q >>/tmp/modelsync-apt.log 2>&1 && $SUDO apt-get install -y -q chromium >>/tmp/modelsync-apt.log 2>&1; }; then
    exit 0
  fi
  tail -5 /tmp/modelsync-apt.log
fi
if [ "${CI:-}" = "true" ]; then
  echo "error: no Chromium at $BIN and it could not be installed" >&2; exit 1
fi
echo "warning: no Chromium at $BIN; the browser tests will skip" >&2
exit 0
