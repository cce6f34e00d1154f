#!/bin/sh
# Install the Debian packages that grepop's build and tests need.
#   scripts/deps.sh            install only if something is missing
#   scripts/deps.sh --install  always run apt-get (update + install)
#   scripts/deps.sh --list     print the package list
set -eu

PACKAGES="build-essential pkg-config clang libclang-rt-14-dev
liburcu-dev libnftnl-dev libmnl-dev libconfig-dev libzmq3-dev libcunit1-dev
libsystemd-dev libmicrohttpd-dev libjansson-dev libcsv-dev libcurl4-openssl-dev
libcap-dev python3 python3-scapy python3-zmq python3-pytest nftables iproute2
systemd man-db groff-base prometheus chromium chromium-driver python3-selenium
curl procps psmisc iputils-ping strace ethtool libxdp-dev libbpf-dev"

if [ "${1:-}" = "--list" ]; then
	echo $PACKAGES
	exit 0
fi

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done

if [ -z "$missing" ] && [ "${1:-}" != "--install" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run 'sudo make deps' (apt-get needs root)" >&2
	exit 1
fi

echo "deps: installing:${missing:- (all)}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $PACKAGES
