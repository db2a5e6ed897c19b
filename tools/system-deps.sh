#!/usr/bin/env bash
# The system programs some tests use, installed when missing (as root, with apt-get):
# chromium (the report test opens report.html in a real headless browser) and qemu-user
# (tests/e2e/test_portable_binaries.py runs the prebuilt native libraries as CPUs without AVX-512).
# Without root or apt-get it only says what is missing: those tests then skip, naming it.
set -u
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v qemu-x86_64 >/dev/null 2>&1 || missing="$missing qemu-user"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } \
    >/dev/null 2>&1 && exit 0
fi
echo "could not install$missing; the tests that need them will skip" >&2
exit 0
