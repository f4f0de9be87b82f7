#!/usr/bin/env bash
# Stop the cluster started by tests/slurm/start.sh. Usage: tests/slurm/stop.sh STATE_DIR [--purge]
set -uo pipefail
STATE=$(realpath -m "${1:?usage: $0 STATE_DIR}")
PURGE=${2:-}

stop_pidfile() {  # name pidfile
  local name=$1 pf=$2 pid i
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "[stop.sh] $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$pf"
}

if [ -f "$STATE/slurm.conf" ] && [ -f "$STATE/run/slurmctld.pid" ] && kill -0 "$(cat "$STATE/run/slurmctld.pid")" 2>/dev/null; then
  export SLURM_CONF="$STATE/slurm.conf"
  # cancel leftover jobs first so their slurmstepd/processes don't outlive slurmd
  if [ -n "$(squeue -h -t PD,R,CG,S 2>/dev/null)" ]; then
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for i in $(seq 1 20); do [ -z "$(squeue -h -t PD,R,CG,S 2>/dev/null)" ] && break; sleep 0.25; done
  fi
fi
stop_pidfile slurmd    "$STATE/run/slurmd.pid"
stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
if [ -S "$STATE/munge/munge.socket" ]; then
  munged --stop --socket="$STATE/munge/munge.socket" >/dev/null 2>&1 || true
fi
stop_pidfile munged "$STATE/munge/munged.pid"
rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock"
# remove the /etc/slurm/slurm.conf symlink only if it points at our conf
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$STATE/slurm.conf" ]; then
  rm -f /etc/slurm/slurm.conf
fi
[ "$PURGE" = "--purge" ] && rm -rf "$STATE"
echo "[stop.sh] stopped (state dir: $STATE)"
