#!/usr/bin/env bash
# `make run` / `make demo`: emulator + topics + gateway + consumer on local defaults.
# Ctrl-C stops everything (the emulator by its JVM pid).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node packages/cli/bin/hourglass.js up ${HOURGLASS_DEMO:+--demo}
