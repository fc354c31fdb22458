#!/usr/bin/env bash
# Make sure rabbitmq-server (and rabbitmqctl) are installed; install Debian's package if not.
# The tests start private nodes from these binaries (see devbroker/node.py); they never use the
# system node the package may start on 5672, and this script leaves that node alone.
set -euo pipefail

have_rabbitmq() {
    if [[ -n "${TOPO_RABBITMQ_BIN_DIR:-}" && -x "$TOPO_RABBITMQ_BIN_DIR/rabbitmq-server" ]]; then
        return 0
    fi
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || command -v rabbitmq-server >/dev/null 2>&1
}

if have_rabbitmq; then
    echo "rabbitmq-server: installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "rabbitmq-server is not installed and this is not a Debian/Ubuntu machine (no apt-get)." >&2
    echo "Install RabbitMQ (3.10 or newer) yourself, or point the tests at a broker with TOPO_TEST_URL." >&2
    exit 1
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "rabbitmq-server is not installed, and installing it needs root (no sudo here)." >&2
        exit 1
    fi
    SUDO=(sudo)
fi

echo "rabbitmq-server: not installed; installing Debian's package"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server

if ! have_rabbitmq; then
    echo "rabbitmq-server still not found after installing the package." >&2
    exit 1
fi
echo "rabbitmq-server: installed"
