#!/usr/bin/env bash
# Says clearly what is missing instead of failing later with a stack trace.
set -euo pipefail
missing=0
major=$(node -p 'process.versions.node.split(".")[0]')
if (( major < 20 )); then echo "hourglass: Node.js 20 or newer is required (found $(node --version))" >&2; missing=1; fi
if ! command -v java >/dev/null; then
  echo "hourglass: Java 17+ is required by the Pub/Sub emulator: apt-get install openjdk-17-jre-headless" >&2; missing=1
fi
if ! command -v gcloud >/dev/null && [[ -z "${CLOUDSDK_ROOT_DIR:-}" ]]; then
  echo "hourglass: the Google Cloud SDK with the Pub/Sub emulator is required:" >&2
  echo "  apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator  (or: gcloud components install pubsub-emulator)" >&2
  missing=1
fi
# The browser suite (tests/web) drives Debian's chromium; never a browser download.
chromium=${HOURGLASS_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x "$chromium" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "hourglass: installing Debian's chromium for the browser tests" >&2
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "hourglass: the browser tests need chromium: apt-get install chromium (or set HOURGLASS_CHROMIUM)" >&2; missing=1
  fi
fi
# The deployed-configuration suite (tests/deployed) starts instances in namespaces of their own.
for tool in ip:iproute2 unshare:util-linux nsenter:util-linux; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "hourglass: installing ${tool#*:} for the deployed-configuration tests" >&2
      apt-get install -y -q "${tool#*:}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${tool#*:}" >/dev/null; }
    else
      echo "hourglass: the deployed-configuration tests need ${tool%%:*}: apt-get install ${tool#*:}" >&2; missing=1
    fi
  fi
done
exit $missing
