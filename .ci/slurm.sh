#!/usr/bin/env bash
# Start or stop a single-node SLURM (slurmctld + slurmd on 127.0.0.1) whose whole state lives in DIR.
#
#   .ci/slurm.sh start DIR    write DIR/slurm.conf, start both daemons, wait until the node is idle,
#                             print the path of slurm.conf (export it as SLURM_CONF for sbatch/squeue)
#   .ci/slurm.sh stop DIR     stop the daemons started for DIR (by their pid files)
#   .ci/slurm.sh status DIR   exit 0 if the node of DIR answers and is usable
#
# Installs nothing: needs slurmctld/slurmd/sinfo on PATH (Debian: apt-get install slurm-wlm) and root
# (SlurmUser=root). Authentication is auth/none + cred/none, so munge is not needed; this is a
# single-user CI setup on loopback, never a production configuration.
# Ports: SLURMCTLD_PORT / SLURMD_PORT if set, else two free ports on 127.0.0.1, so several
# instances (one per DIR) can run side by side.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf="$dir/slurm.conf"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

node_state() {
    SLURM_CONF="$conf" sinfo -h -n localhost -o %T 2>/dev/null | head -n1 || true
}

stop_pidfile() {
    local pidfile=$1 pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

case "$cmd" in
start)
    if [ "$(id -u)" != 0 ]; then
        echo "slurm.sh: must run as root (SlurmUser=root, slurmd needs root)" >&2; exit 1
    fi
    for exe in slurmctld slurmd sinfo; do
        command -v "$exe" >/dev/null || { echo "slurm.sh: $exe not on PATH (apt-get install slurm-wlm)" >&2; exit 1; }
    done
    if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
        echo "slurm.sh: daemons of $dir already running; stop them first" >&2; exit 1
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/tmp"
    ctld_port=${SLURMCTLD_PORT:-$(free_port)}
    slurmd_port=${SLURMD_PORT:-$(free_port)}
    cat > "$conf" <<CONF
# written by gridflux .ci/slurm.sh for a single-node test SLURM; all state under $dir
ClusterName=gridflux-ci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
TmpFS=$dir/tmp
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    # -c: start clean, without recovering jobs of an earlier run in DIR
    slurmctld -f "$conf" -c
    slurmd -f "$conf" -N localhost
    for i in $(seq 1 300); do
        state=$(node_state)
        case "$state" in
            idle*) echo "$conf"; exit 0 ;;
            down*|drain*|fail*) SLURM_CONF="$conf" scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.1
    done
    echo "slurm.sh: node did not become idle within 30 s (state: ${state:-none}); logs in $dir/log" >&2
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop_pidfile "$dir/slurmd.pid"; stop_pidfile "$dir/slurmctld.pid"
    exit 1
    ;;
stop)
    # cancel leftover jobs so that their processes do not outlive the daemons
    if [ -f "$conf" ] && command -v scancel >/dev/null; then
        SLURM_CONF="$conf" timeout 10 scancel --user=root >/dev/null 2>&1 || true
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    ;;
status)
    case "$(node_state)" in
        idle*|mix*|alloc*|completing*) exit 0 ;;
        *) exit 1 ;;
    esac
    ;;
*) usage ;;
esac
