#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster (munge + slurmctld + slurmd)
# with all state under a scratch dir. Idempotent: re-running while it is up
# just re-checks that the node is idle.
#
# Usage: tests/slurm/start.sh STATE_DIR
# Then:  export SLURM_CONF=STATE_DIR/slurm.conf   (also written to STATE_DIR/env.sh)
# SLURM's own defaults where a site would keep them: EnforcePartLimits=NO (a job over its
# partition's limits is accepted and pends for ever), DefMemPerCPU unset.
# Env knobs: SLURM_NODE_MEM_MB (the node's RealMemory; default: this machine's less
#            SLURM_MEM_MARGIN_MB, 1024), SLURM_GPU_MAX_TIME (the gpu partition's MaxTime,
#            default INFINITE), SLURM_MIN_JOB_AGE (default 3600),
#            SLURMCTLD_PORT (6817), SLURMD_PORT (6818), SLURM_START_TIMEOUT (30)
set -euo pipefail

STATE=$(realpath -m "${1:?usage: $0 STATE_DIR}")
CONF="$STATE/slurm.conf"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCK="$MUNGE_DIR/munge.socket"
TIMEOUT=${SLURM_START_TIMEOUT:-30}

log() { echo "[start.sh] $*" >&2; }

dump_logs() {
  for f in "$MUNGE_DIR/munged.log" "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" \
           "$STATE/log/slurmctld.out" "$STATE/log/slurmd.out"; do
    [ -f "$f" ] && { echo "----- tail $f -----" >&2; tail -n 25 "$f" >&2; }
  done
  return 0
}
die() { log "ERROR: $*"; dump_logs; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- 1. install
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm + munge via apt-get"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # postinst scripts try invoke-rc.d (denied / no systemd): harmless.
  # keep the packages' init scripts from starting munge/slurmd with /etc configs
  POLICY_ADDED=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; POLICY_ADDED=1
  fi
  mkdir -p "$STATE"
  apt-get update -qq >/dev/null || apt-get update -qq >/dev/null
  rc=0
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$STATE/apt-install.log" 2>&1 || rc=$?
  [ "$POLICY_ADDED" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { tail -n 20 "$STATE/apt-install.log" >&2; die "apt-get install slurm-wlm munge failed (rc=$rc)"; }
  log "installed in $((SECONDS - t0)) s"
fi
log "$(slurmctld -V)"

mkdir -p "$STATE"/{log,spool/ctld,spool/d,run}
chmod 755 "$STATE"

# ---------------------------------------------------------------- 2. slurm.conf
write_jobcomp_lua() {
  # slurmctld's jobcomp/lua calls slurm_jobcomp_log_record(job) for every job
  # that ends; append one TSV line to $STATE/log/jobcomp.tsv
  cat > "$STATE/jobcomp.lua" <<LUA
local out = "$STATE/log/jobcomp.tsv"
local states = {[0]="PENDING","RUNNING","SUSPENDED","COMPLETED","CANCELLED","FAILED",
                "TIMEOUT","NODE_FAIL","PREEMPTED","BOOT_FAIL","DEADLINE","OUT_OF_MEMORY"}
local cols = {"job_id","name","comment","partition","cpus","mem_mb","tres","state",
              "exit_code","submit_time","start_time","end_time","nodes","work_dir"}
local function s(v) if v == nil then return "" end
  return (tostring(v):gsub("[\t\n]", " ")) end
local function ts(t) if not t or t == 0 then return "" end
  return os.date("!%Y-%m-%dT%H:%M:%S", t) end
function slurm_jobcomp_log_record(job)
  local new = io.open(out, "r") == nil
  local f = io.open(out, "a")
  if new then f:write(table.concat(cols, "\t") .. "\n") end
  local st = job.job_state and states[job.job_state % 256] or "?"
  local ec = job.exit_code or 0
  local mem = job.min_mem_per_node   -- --mem; else --mem-per-cpu/DefMemPerCPU x cpus
  if mem == nil and job.min_mem_per_cpu and job.total_cpus then mem = job.min_mem_per_cpu * job.total_cpus end
  local row = {job.job_id, job.name, job.comment, job.partition, job.total_cpus,
               mem, job.tres_fmt_alloc_str, st,
               math.floor(ec / 256) .. ":" .. (ec % 256),
               ts(job.submit_time), ts(job.start_time), ts(job.end_time), job.nodes, job.work_dir}
  for i = 1, #cols do row[i] = s(row[i]) end
  f:write(table.concat(row, "\t") .. "\n")
  f:close()
  return slurm.SUCCESS
end
return slurm.SUCCESS
LUA
}

HOST=$(hostname -s)
# slurmd -C prints the node's real topology (avoids "config mismatch" drain)
NODE_HW=$(slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//')
MEM_KB=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
REAL_MEM=${SLURM_NODE_MEM_MB:-$(( MEM_KB / 1024 - ${SLURM_MEM_MARGIN_MB:-1024} ))}

# Job-completion log (the only per-job record once MinJobAge expires, since there
# is no accounting DB). lua: our TSV incl. the --comment (snakemake: rule_<name>);
# filetxt: Slurm's built-in one-line-per-job text (no comment field).
case "${SLURM_JOBCOMP:-lua}" in
  lua)     JOBCOMP_LINES="JobCompType=jobcomp/lua"   # loads jobcomp.lua next to slurm.conf
           write_jobcomp_lua ;;
  filetxt) JOBCOMP_LINES="JobCompType=jobcomp/filetxt
JobCompLoc=${STATE}/log/jobcomp.txt" ;;
  none)    JOBCOMP_LINES="JobCompType=jobcomp/none" ;;
  *) die "SLURM_JOBCOMP must be lua|filetxt|none" ;;
esac

NEW_CONF=$(cat <<EOF
# generated by tests/slurm/start.sh
ClusterName=testcluster
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${MUNGE_SOCK}
StateSaveLocation=${STATE}/spool/ctld
SlurmdSpoolDir=${STATE}/spool/d
SlurmctldPidFile=${STATE}/run/slurmctld.pid
SlurmdPidFile=${STATE}/run/slurmd.pid
SlurmctldLogFile=${STATE}/log/slurmctld.log
SlurmdLogFile=${STATE}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
${JOBCOMP_LINES}
MinJobAge=${SLURM_MIN_JOB_AGE:-3600}
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=2
Waittime=0
# node: one host, two partitions (gpu is just a label, no GRES)
NodeName=${HOST} NodeAddr=127.0.0.1 ${NODE_HW} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=cpu Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
PartitionName=gpu Nodes=${HOST} Default=NO MaxTime=${SLURM_GPU_MAX_TIME:-INFINITE} State=UP OverSubscribe=NO
EOF
)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW_CONF" ]; then
  printf '%s\n' "$NEW_CONF" > "$CONF"
  CONF_CHANGED=1
else
  CONF_CHANGED=0
fi
export SLURM_CONF="$CONF"
echo "export SLURM_CONF=$CONF" > "$STATE/env.sh"

# snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable
# (SLURM_CONF included) before calling the nested `srun`, so srun must find
# the config at the compiled-in default path /etc/slurm/slurm.conf.
ETC_CONF=/etc/slurm/slurm.conf
if [ "${SLURM_LINK_ETC:-1}" = 1 ]; then
  if [ -L "$ETC_CONF" ] || [ ! -e "$ETC_CONF" ]; then
    mkdir -p /etc/slurm && ln -sfn "$CONF" "$ETC_CONF"
  elif [ "$(realpath "$ETC_CONF")" != "$CONF" ]; then
    log "WARNING: $ETC_CONF is a real file; not replacing it. Nested srun (snakemake jobstep) will use it!"
  fi
fi

# ---------------------------------------------------------------- 3. munge
mkdir -p "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR"          # munged requires o+x on the socket dir
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
  mungekey --create --keyfile="$MUNGE_DIR/munge.key"
  chmod 600 "$MUNGE_DIR/munge.key"
fi
if ! pid_alive "$MUNGE_DIR/munged.pid"; then
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  munged --socket="$MUNGE_SOCK" --key-file="$MUNGE_DIR/munge.key" \
         --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
         --seed-file="$MUNGE_DIR/munged.seed" --force \
    || die "munged failed to start"
fi
munge -n -S "$MUNGE_SOCK" | unmunge -S "$MUNGE_SOCK" >/dev/null || die "munge round-trip failed"

# ---------------------------------------------------------------- 4. daemons
stop_daemon() {  # pidfile
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true; rm -f "$1"
}
if [ "$CONF_CHANGED" = 1 ] && { pid_alive "$STATE/run/slurmctld.pid" || pid_alive "$STATE/run/slurmd.pid"; }; then
  log "slurm.conf changed: restarting slurmctld + slurmd"
  stop_daemon "$STATE/run/slurmd.pid"; stop_daemon "$STATE/run/slurmctld.pid"
fi
if ! pid_alive "$STATE/run/slurmctld.pid"; then
  # -c: start clean (drop jobs saved from a previous run); -i: ignore stale state errors
  slurmctld -f "$CONF" -c -i >"$STATE/log/slurmctld.out" 2>&1 || die "slurmctld failed to start"
fi
if ! pid_alive "$STATE/run/slurmd.pid"; then
  slurmd -f "$CONF" -N "$HOST" >"$STATE/log/slurmd.out" 2>&1 || die "slurmd failed to start"
fi

# ---------------------------------------------------------------- wait for idle
t0=$SECONDS
while :; do
  st=$(sinfo -h -n "$HOST" -p cpu -o '%T' 2>/dev/null | head -n1 || true)
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    down*|drain*|fail*)
      # a node left DOWN/DRAINED (e.g. by an earlier crash): bring it back
      [ $((SECONDS - t0)) -ge 3 ] && \
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
    sinfo -N -l >&2 2>&1 || true
    scontrol show node "$HOST" >&2 2>&1 || true
    die "node $HOST not idle after ${TIMEOUT}s (state='$st')"
  fi
  sleep 0.5
done
log "cluster up in $((SECONDS - t0)) s; node $HOST is $st"
log "export SLURM_CONF=$CONF   (or: source $STATE/env.sh)"
sinfo
