#!/bin/sh
# Installs the Debian peers the interop tests talk to, when missing and when it can (root +
# apt-get). Idempotent: prints what it found and what it did. Never fails the test run itself;
# a peer still missing makes its tests fail under CI=true and be ignored elsewhere.
set -u
missing=""
have() { [ -e "$1" ]; }
have /usr/bin/Rscript || missing="$missing r-base-core"
have /usr/bin/nngcat || missing="$missing nng-utils"
have /usr/include/nng/nng.h || missing="$missing libnng-dev"
/usr/bin/python3 -c "import websockets" 2>/dev/null || missing="$missing python3-websockets"
have /usr/bin/chromium || missing="$missing chromium"
if [ -z "$missing" ]; then
  echo "peers: all installed (r-base-core nng-utils libnng-dev python3-websockets chromium)"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "peers: missing$missing; not root or no apt-get, so their tests are ignored (they fail under CI=true)"
  exit 0
fi
echo "peers: installing$missing with apt-get"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/tmp/rsock-apt.log 2>&1 &&
  apt-get install -y -qq $missing >>/tmp/rsock-apt.log 2>&1; then
  echo "peers: installed$missing"
else
  echo "peers: apt-get failed (see /tmp/rsock-apt.log); tests of the missing peers will not pass"
  tail -n 5 /tmp/rsock-apt.log
fi
exit 0
