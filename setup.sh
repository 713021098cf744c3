#!/bin/sh
# Set sockspec up on this machine: the optional system packages, then the virtualenv.
#
# The system packages let more tests run; nothing requires them (each test that needs one
# skips, naming it):
#   nftables    crafted-TCP cases silence the kernel's RSTs with an nftables rule
#   libpcap0.8  capture filters compiled to BPF (without it, capture filters in Python)
#   chromium    the browser test of the HTML report
#   libsystemd-dev, pkg-config, gcc
#               tox -e thirdparty builds systemd-python's C extension for systemd-socketserver
# They are installed with apt-get when it is there and this runs as root; otherwise (or with
# SOCKSPEC_SYSTEM_PACKAGES=no) one line says what was skipped.
set -eu
cd "$(dirname "$0")"

PACKAGES="nftables libpcap0.8 chromium libsystemd-dev pkg-config gcc"
if [ "${SOCKSPEC_SYSTEM_PACKAGES:-yes}" = no ]; then
    echo "setup: system packages skipped (SOCKSPEC_SYSTEM_PACKAGES=no): $PACKAGES" >&2
elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: system packages skipped (needs root and apt-get): $PACKAGES" >&2
elif { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $PACKAGES; } >/dev/null 2>&1; then
    echo "setup: system packages installed: $PACKAGES" >&2
else
    echo "setup: system packages could not be installed (tests needing them skip): $PACKAGES" >&2
fi

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
