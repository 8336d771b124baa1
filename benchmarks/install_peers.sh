#!/usr/bin/env bash
# Install the peers of the benchmark from Debian when missing: etcd-server (/usr/bin/etcd)
# and zookeeper (/usr/share/java/zookeeper.jar, which pulls in a Java runtime).
# Runs `apt-get update` first (a fresh machine has no package lists). Idempotent.
set -euo pipefail

missing=()
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)

if [ ${#missing[@]} -eq 0 ]; then
    echo "bench peers: etcd and zookeeper already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "bench peers: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
