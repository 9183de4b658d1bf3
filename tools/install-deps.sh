#!/bin/sh
# Install (with apt) everything needed to build rgtfs and run its tests.
# Idempotent and quiet: does nothing when every package is present.
# Then installs the S3 test server from npm (tools/install-s3rver.sh).
set -eu

PKGS="build-essential meson ninja-build pkg-config libfuse3-dev fuse3
libssh2-1-dev libcurl4-openssl-dev liblmdb-dev libjansson-dev libinih-dev libxml2-dev
libssl-dev zlib1g-dev openssh-server openssh-client python3 python3-pytest rsync sshfs attr
procps psmisc python3-numpy python3-torch python3-boto3
man-db groff-base systemd
clang libclang-rt-14-dev"

# node and npm for tools/install-s3rver.sh. A machine with its own Node.js
# (nodesource's, which includes npm and conflicts with Debian's npm package)
# keeps it; Debian's are added only where there is none.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exec "$(dirname "$0")/install-s3rver.sh"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

exec "$(dirname "$0")/install-s3rver.sh"
