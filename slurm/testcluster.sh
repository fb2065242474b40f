#!/usr/bin/env bash
# A real Slurm cluster and sshd on one machine, for CI and for trying asyncmb.
#
#   slurm/testcluster.sh up      # munged, slurmctld, 3 fake nodes n[1-3] (slurmd each), sshd on 127.0.0.1-3:22022
#   slurm/testcluster.sh env     # prints `export SLURM_CONF=...` for srun/sbatch/sinfo in this shell
#   slurm/testcluster.sh test    # up, the three training jobs of `make test-cluster`, down (also when a step fails)
#   slurm/testcluster.sh down    # stops what `up` started; harmless when nothing is up
#
# Needs root (slurmd runs jobs as their users, sshd switches users) and Debian's
# slurm-wlm, munge and openssh-server, which `up` installs when missing. Everything
# lives in $ASYNCMB_CLUSTER_DIR (default /tmp/asyncmb-testcluster); the only
# changes outside it are three lines in /etc/hosts (n1 n2 n3 -> 127.0.0.1, removed by
# `down`) and the user asyncmb-test (no shell rc files, so each ssh is quick).
# Facts (Debian 12, Slurm 22.05, no systemd): proctrack/linuxproc and task/none work
# without cgroups; config_overrides lets several slurmd's on one host advertise 8 CPUs
# each; srun beyond the advertised CPUs would wait forever, so every wait here runs
# under `timeout`.
set -euo pipefail

D=${ASYNCMB_CLUSTER_DIR:-/tmp/asyncmb-testcluster}
SSH_PORT=${ASYNCMB_CLUSTER_SSH_PORT:-22022}
CTLD_PORT=${ASYNCMB_CLUSTER_CTLD_PORT:-16817}
TEST_USER=asyncmb-test
export SLURM_CONF=$D/slurm.conf
HOSTS_TAG="# asyncmb testcluster"

log() { echo "testcluster: $*" >&2; }
die() { log "$*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (slurmd and sshd need it)"; }

deps() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
    command -v ssh >/dev/null || missing+=(openssh-client)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# running PID: the process exists and is not a zombie (where nothing reaps
# orphans, a stopped daemon stays a zombie and kill -0 still succeeds).
running() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! awk '{exit $3 != "Z"}' "/proc/$1/stat"; }

# alive PIDFILE: the process named by PIDFILE is running.
alive() { running "$(cat "$1" 2>/dev/null)"; }

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
        sleep 0.5
    done
}

nodes_idle() { [ "$(sinfo -h -N -o %t 2>/dev/null | grep -c '^idle')" = 3 ]; }

write_slurm_conf() {
    local host
    host=$(hostname -s)
    mkdir -p "$D/state" "$D/spool" "$D/log"
    cat >"$SLURM_CONF" <<EOF
# Written by slurm/testcluster.sh: three fake nodes on this host.
ClusterName=asyncmbtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=30
NodeName=n[1-3] NodeHostname=$host NodeAddr=127.0.0.1 Port=17001-17003 CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start_munge() {
    if munge_works; then
        log "munged is already running: using it"
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 munged munge_works
    local pid
    for pid in $(pgrep -x munged); do
        running "$pid" && echo "$pid" >"$D/munged.pid"
    done
}

start_slurm() {
    if alive "$D/slurmctld.pid"; then
        log "slurmctld is already running"
    else
        slurmctld -i
    fi
    wait_for 30 slurmctld scontrol ping
    for n in 1 2 3; do
        alive "$D/slurmd-n$n.pid" || slurmd -N "n$n"
    done
    if ! wait_for 60 "the nodes to be idle" nodes_idle; then
        sinfo -N >&2 || true
        tail -n 20 "$D"/log/*.log >&2 || true
        return 1
    fi
}

# add_hosts makes the fake node names resolve; where /etc/hosts cannot be
# written, the srun job uses the file rendezvous instead.
add_hosts() {
    grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null && return
    # /etc/hosts may be a bind mount that cannot be replaced: append in place.
    echo "127.0.0.1 n1 n2 n3 $HOSTS_TAG" >>/etc/hosts 2>/dev/null ||
        log "cannot write /etc/hosts: n1 n2 n3 will not resolve (use --rendezvous file://DIR)"
}

remove_hosts() {
    grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null || return 0
    local keep
    keep=$(grep -v "$HOSTS_TAG" /etc/hosts)
    printf '%s\n' "$keep" >/etc/hosts
}

start_sshd() {
    local s=$D/ssh
    mkdir -p "$s" /run/sshd
    if ! id "$TEST_USER" >/dev/null 2>&1; then
        # No home directory and /bin/sh: no rc file runs on each ssh.
        useradd --system --no-create-home --home-dir "$D/home" --shell /bin/sh "$TEST_USER"
    fi
    # A locked account ("!") is refused by sshd without PAM; "*" only has no password.
    usermod -p '*' "$TEST_USER"
    mkdir -p "$D/home"
    chown "$TEST_USER" "$D/home"
    [ -f "$s/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$s/host_ed25519"
    [ -f "$s/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$s/id_ed25519"
    cp "$s/id_ed25519.pub" "$s/authorized_keys"
    chmod 644 "$s/authorized_keys"
    cat >"$s/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSH_PORT
ListenAddress 127.0.0.2:$SSH_PORT
ListenAddress 127.0.0.3:$SSH_PORT
HostKey $s/host_ed25519
AuthorizedKeysFile $s/authorized_keys
PidFile $s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $TEST_USER
PrintMotd no
LogLevel ERROR
EOF
    : >"$s/known_hosts"
    for a in 127.0.0.1 127.0.0.2 127.0.0.3; do
        echo "[$a]:$SSH_PORT $(cut -d' ' -f1,2 "$s/host_ed25519.pub")" >>"$s/known_hosts"
    done
    cat >"$s/config" <<EOF
Host 127.0.0.1 127.0.0.2 127.0.0.3
    User $TEST_USER
    IdentityFile $s/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $s/known_hosts
    StrictHostKeyChecking yes
    LogLevel ERROR
EOF
    alive "$s/sshd.pid" || /usr/sbin/sshd -f "$s/sshd_config"
    wait_for 10 sshd ssh -F "$s/config" -p "$SSH_PORT" -o BatchMode=yes 127.0.0.3 true
}

up() {
    need_root
    deps
    mkdir -p "$D"
    write_slurm_conf
    add_hosts
    start_munge
    start_slurm
    start_sshd
    log "up: nodes $(sinfo -h -o '%N %t'), sshd on 127.0.0.1-3:$SSH_PORT as $TEST_USER"
    log "for srun/sbatch here: export SLURM_CONF=$SLURM_CONF"
}

down() {
    if [ -f "$SLURM_CONF" ] && command -v scontrol >/dev/null; then
        # Cancels what still runs, then stops slurmctld and every slurmd.
        scancel --quiet --user=root 2>/dev/null || true
        timeout 20 scontrol shutdown >/dev/null 2>&1 || true
    fi
    for p in "$D"/slurmd-n*.pid "$D/slurmctld.pid" "$D/ssh/sshd.pid" "$D/munged.pid"; do
        local pid
        pid=$(cat "$p" 2>/dev/null) || continue
        if running "$pid"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do running "$pid" || break; sleep 0.25; done
            running "$pid" && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$p"
    done
    remove_hosts
    if id "$TEST_USER" >/dev/null 2>&1; then
        userdel "$TEST_USER" 2>/dev/null || true
    fi
    rm -rf "$D"
    log "down"
}

# check_summary DIR LAUNCHER: the run reached its target and recorded how it ran.
check_summary() {
    local s=$1/summary.json
    [ -f "$s" ] || die "$s is missing"
    if ! grep -q '"reached": true' "$s"; then
        grep -E -A8 '"stop_reason"|"target"' "$s" >&2 || true
        die "$s: the target was not reached"
    fi
    grep -q "\"launcher\": \"$2\"" "$s" || die "$s: launcher is not $2"
    grep -q '"hosts"' "$s" || die "$s: no hosts"
    if [ "$2" != ssh ]; then
        grep -q '"slurm_job_id"' "$s" && grep -q '"slurm_step_id"' "$s" || die "$s: no Slurm job or step id"
    fi
    log "$2: target reached, $s ok"
}

# The three jobs of `make test-cluster` (README "Running on a cluster").
# a9a l1-logistic 1e-4 to relative suboptimality 1e-3, as `make run`; phi* from
# testdata/reference.jsonl. Six ranks share this machine's cores, so some
# workers are much slower than others: the epoch cap is 200 rather than 50
# (the target is usually reached after 20-45 epochs).
run_jobs() {
    local repo run
    repo=$(pwd)
    run=$D/run
    mkdir -p "$run"
    chmod 755 "$D"
    cp bin/asyncmb testdata/a9a slurm/asyncmb.sbatch "$run/"
    chmod 755 "$run"
    cd "$run"
    local problem=(--data a9a --loss logistic --reg l1 --lambda 1e-4 --tau 0 --average tail
        --target 1e-3 --epochs 200 --phi-star 0.32689896196913504 --progress line)

    # 1. srun: 3 nodes x 2 tasks; rank 0 is the first node's (n1) on a port
    #    derived from the job and step ids; the secret file in the submit directory.
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >.asyncmb-secret)
    local rv=()
    getent hosts n1 >/dev/null || rv=(--rendezvous "file://$run/rendezvous")
    log "srun -N 3 --ntasks-per-node 2"
    timeout 300 srun -N 3 --ntasks-per-node 2 --label ./asyncmb rank "${problem[@]}" "${rv[@]}" --out out/srun
    check_summary out/srun srun

    # 2. sbatch: the template, with the file rendezvous in a shared directory.
    log "sbatch --wait asyncmb.sbatch"
    if ! ASYNCMB=$run/asyncmb ASYNCMB_RENDEZVOUS=file://$run/rendezvous ASYNCMB_OUT_DIR=out/sbatch \
        timeout 300 sbatch --wait --nodes 3 --ntasks-per-node 2 --output sbatch.out ./asyncmb.sbatch "${problem[@]}"; then
        cat sbatch.out >&2 || true
        die "the sbatch job failed"
    fi
    check_summary out/sbatch sbatch

    # 3. ssh: three loopback addresses with two slots each, as user asyncmb-test.
    printf '127.0.0.1 slots=2\n127.0.0.2 slots=2\n127.0.0.3 slots=2\n' >hostfile
    mkdir -p out/ssh && chown "$TEST_USER" out/ssh
    log "asyncmb train --launcher ssh --hostfile hostfile"
    timeout 300 ./asyncmb train --launcher ssh --hostfile hostfile --ssh "ssh -F $D/ssh/config" --ssh-port "$SSH_PORT" \
        "${problem[@]}" --out out/ssh
    check_summary out/ssh ssh
    cd "$repo"
}

case ${1:-} in
up) up ;;
down) down ;;
env) echo "export SLURM_CONF=$SLURM_CONF" ;;
test)
    [ -x bin/asyncmb ] || die "run from the repository after make build"
    trap down EXIT
    up
    run_jobs
    log "all three jobs reached the target"
    ;;
*)
    echo "usage: $0 up|down|env|test" >&2
    exit 2
    ;;
esac
