# Shared by up and down: where the sandbox lives and how to talk to it.
# shellcheck shell=bash

SANDBOX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SANDBOX_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-mesh/sandbox-state}"
KUBECONFIG_PATH="$STATE/kubeconfig"

# Below 32768: the kernel hands out ports from 32768 up for outgoing connections, and one
# of those could hold a sandbox port when `up` binds it.
ETCD_PORT="${SANDBOX_ETCD_PORT:-23379}"
ETCD_PEER_PORT="${SANDBOX_ETCD_PEER_PORT:-23380}"
APISERVER_PORT="${SANDBOX_APISERVER_PORT:-23443}"
KCM_PORT="${SANDBOX_KCM_PORT:-23257}"
SCHEDULER_PORT="${SANDBOX_SCHEDULER_PORT:-23259}"
KWOK_PORT="${SANDBOX_KWOK_PORT:-23247}"
INJECTOR_PORT="${SANDBOX_INJECTOR_PORT:-23444}"
INJECTOR_PROXY_PORT="${SANDBOX_INJECTOR_PROXY_PORT:-23445}"

# The order they start in; down stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok injector)

log() { echo "sandbox: $*" >&2; }
die() { echo "sandbox: error: $*" >&2; exit 1; }

k() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# pid_of NAME: the pid of our running component, or nothing. A pid counts only
# if its command line still names our state dir, so a reused pid is not ours.
pid_of() {
	local pid
	pid="$(cat "$STATE/run/$1.pid" 2>/dev/null)" || return 0
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
	if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE"; then
		echo "$pid"
	fi
}
