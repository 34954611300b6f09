#!/bin/bash
# Private, disposable PostgreSQL 15 + ejabberd 23.01 for filerepo's tests and
# demo, all inside one directory, on loopback / unix sockets only. Several
# instances (different DIRs) can run side by side; the packaged services
# (/etc/ejabberd, `service postgresql`) are never touched.
#
# Usage (as root):
#   tools/services.sh start DIR          start both (no-op if running), write DIR/services.env
#   tools/services.sh stop DIR           stop both, check nothing is left (idempotent)
#   tools/services.sh status DIR         show what runs; exit 0 only if both are up
#   tools/services.sh restart DIR        stop + start
#   tools/services.sh start-xmpp|stop-xmpp|restart-xmpp DIR   ejabberd only (same ports, same data)
#   tools/services.sh start-pg|stop-pg|restart-pg DIR         PostgreSQL only (same data)
#
# Environment:
#   FILEREPO_PORT_BASE=N   use ports N..N+9 (default: a free block in 20000-29990)
#   FILEREPO_PG_FAST=1     fsync=off, synchronous_commit=off, full_page_writes=off.
#                          Default ON here: this script is for tests and demos only,
#                          where speed matters and a crash may lose the data. Set 0
#                          to run PostgreSQL with its safe defaults.
#   FILEREPO_XMPP_TLS=0    1 = c2s offers optional STARTTLS with a self-signed
#                          certificate (clients must not verify it). Default off:
#                          plain c2s on loopback, SCRAM authentication.
#   Both are remembered per DIR (DIR/options): a later restart keeps them.
#
# XMPP: domain localhost, pubsub.localhost (collections: nodetree_filerepo),
# proxy.localhost (SOCKS5). The component port accepts any component domain
# with the secret in DIR/component.secret; files.localhost and
# files-*.localhost may create pubsub nodes. Accounts alice, bob, carol.
#
# Ports (base B): B c2s, B+1 XEP-0114 component, B+2 proxy65 (SOCKS5),
# B+3 Erlang distribution (fixed, so no epmd is started or killed); B+4..B+9
# are reserved. PostgreSQL listens on the unix socket DIR/pg only.
#
# Layout of DIR: pg/ (socket, log; pg/data the cluster, owned by postgres),
# ejabberd/ (etc, spool = mnesia, logs, modules/ebin, pid; owned by ejabberd),
# component.secret, accounts, services.env, ports, options.
set -eu

PG_BIN=/usr/lib/postgresql/15/bin
EJ_LIB=/usr/lib/x86_64-linux-gnu/ejabberd-23.01
EJCTL=/usr/sbin/ejabberdctl
HERE=$(cd "$(dirname "$0")" && pwd -P)
NODETREE_SRC=$HERE/ejabberd/nodetree_filerepo.erl
ACCOUNTS="alice bob carol"
XMPP_DOMAIN=localhost
PORT_LOCK=/tmp/.filerepo-services-ports.lock

say() { echo "services: $*"; }
die() { echo "services: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
randhex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

usage() {
    sed -n '/^# Usage/,/^# Environment/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- DIR setup

# Resolve DIR, create it if needed and make sure the service users can reach
# it: ejabberdctl re-executes itself as `ejabberd`, and initdb/postgres must
# run as `postgres` (initdb refuses root). /root/... is not reachable.
setup_dir() {
    [ "$(id -u)" -eq 0 ] || die "run as root (servers run as users ejabberd and postgres)"
    if [ ! -d "$1" ]; then
        case $2 in
            create) mkdir -p "$1"; chmod 0755 "$1" ;;
            stop) say "nothing in $1"; exit 0 ;;
            *) say "no services in $1"; exit 1 ;;
        esac
    fi
    DIR=$(cd "$1" && pwd -P)
    # Values in services.env and the ejabberd config must stay unquoted.
    case $DIR in
        *[!A-Za-z0-9._/+-]*) die "DIR '$DIR' must contain only letters, digits and ._/+-" ;;
    esac
    local u
    for u in ejabberd postgres; do
        runuser -u "$u" -- test -x "$DIR" ||
            die "$DIR is not reachable by user '$u' (every parent directory needs o+x; use e.g. /tmp/...)"
    done
    PGDIR=$DIR/pg
    PGDATA_DIR=$PGDIR/data
    EJDIR=$DIR/ejabberd
    EJCFG=$EJDIR/etc
    load_options
    # Compiled extra modules. Not DIR/ejabberd/ebin: a code-path entry named
    # .../ejabberd/ebin makes Erlang take DIR/ejabberd for the ejabberd
    # application's own directory (priv/msgs, SQL schemas … then go missing).
    EJMOD=$EJDIR/modules/ebin
}

# FILEREPO_PG_FAST / FILEREPO_XMPP_TLS: the value given in the environment,
# else the one this DIR was last started with (so restart-xmpp or restart-pg
# keep it), else the default. Saved in DIR/options.
load_options() {
    local saved_fast="" saved_tls=""
    if [ -f "$DIR/options" ]; then
        saved_fast=$(sed -n 's/^PG_FAST=//p' "$DIR/options")
        saved_tls=$(sed -n 's/^XMPP_TLS=//p' "$DIR/options")
    fi
    PG_FAST=${FILEREPO_PG_FAST:-${saved_fast:-1}}
    XMPP_TLS=${FILEREPO_XMPP_TLS:-${saved_tls:-0}}
}

save_options() { printf 'PG_FAST=%s\nXMPP_TLS=%s\n' "$PG_FAST" "$XMPP_TLS" >"$DIR/options"; }

# ---------------------------------------------------------------- PostgreSQL

pg_ctl_() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" "$@"; }

# Running = the pid in postmaster.pid is a live postmaster of this cluster
# (not `pg_ctl status`: a killed postmaster left as a zombie counts as alive).
pg_running() { [ -n "$(pg_pid)" ]; }

# The postmaster's pid, only if that process really is this cluster's
# postmaster (postmaster.pid can be stale after a crash).
pg_pid() {
    local pid
    [ -f "$PGDATA_DIR/postmaster.pid" ] || return 0
    pid=$(head -n1 "$PGDATA_DIR/postmaster.pid")
    case " $(pids_with "$PG_BIN/postgres -D $PGDATA_DIR " | tr '\n' ' ') " in
        *" $pid "*) echo "$pid" ;;
    esac
}

start_pg() {
    if pg_running; then
        say "postgresql already running in $PGDIR (pid $(pg_pid))"
        return 0
    fi
    local t0 opts
    t0=$(now)
    install -d -o postgres -g postgres -m 0755 "$PGDIR"
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
        runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA_DIR" -A trust -U filerepo \
            -E UTF8 --locale=C --no-instructions >"$PGDIR/initdb.log" 2>&1 ||
            { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
    fi
    # Unix socket in DIR/pg only, no TCP; fixed port number so the socket is
    # always DIR/pg/.s.PGSQL.5432 whatever PGPORT the caller has.
    opts="-p 5432 -k $PGDIR -c listen_addresses=''"
    save_options
    if [ "$PG_FAST" = 1 ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    pg_ctl_ -o "$opts" -l "$PGDIR/postgresql.log" -w -t 60 start >/dev/null ||
        { tail -n 20 "$PGDIR/postgresql.log" >&2; die "postgresql did not start"; }
    "$PG_BIN/pg_isready" -q -h "$PGDIR" -p 5432 -t 30 || die "postgresql not ready"
    # The database is created once, on the first start.
    if [ "$("$PG_BIN/psql" -h "$PGDIR" -p 5432 -U filerepo -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = 'filerepo'")" != 1 ]; then
        "$PG_BIN/createdb" -h "$PGDIR" -p 5432 -U filerepo -O filerepo filerepo
    fi
    say "postgresql ready in $(since "$t0") s (socket $PGDIR)"
}

stop_pg() {
    [ -d "$PGDATA_DIR" ] || return 0
    local pids="" pid
    pid=$(pg_pid)
    # Remember the postmaster and its children to verify they are all gone.
    [ -n "$pid" ] && pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
    if pg_running; then
        pg_ctl_ -m fast -w -t 60 stop >/dev/null || say "pg_ctl stop failed"
        say "postgresql stopped"
    fi
    kill_leftovers postgresql postgres "$pids $(pids_with "$PG_BIN/postgres -D $PGDATA_DIR ")"
}

# ---------------------------------------------------------------- ejabberd

ejctl() { "$EJCTL" --config-dir "$EJCFG" "$@"; }

ej_node() { cat "$EJDIR/node" 2>/dev/null || true; }

# The instance's beam.smp, found by its unique node name (not by epmd: none).
ej_pids() {
    local node
    node=$(ej_node)
    [ -n "$node" ] || return 0
    # Patterns go through the environment: in awk's argv they would match awk.
    ps -ww -eo pid=,args= | FR_A=beam.smp FR_B=" -sname $node " \
        awk 'index($0, ENVIRON["FR_A"]) && index($0 " ", ENVIRON["FR_B"]) { print $1 }'
}

ej_running() { [ -n "$(ej_pids)" ]; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports listening on this machine (TCP), one a line.
listening_ports() { ss -Hltn | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u; }

block_free() {
    local base=$1 used=$2 p
    for p in $(seq "$base" $((base + 9))); do
        case " $used " in *" $p "*) return 1 ;; esac
    done
}

# Choose the port block: the stored one when still free, else FILEREPO_PORT_BASE,
# else a free block from a random place in 20000-29990. $1 = "keep" refuses to
# move (restart-xmpp: clients reconnect to the same ports).
choose_ports() {
    local used base="" i start
    used=" $(listening_ports | tr '\n' ' ') "
    if [ -f "$DIR/ports" ]; then
        base=$(cat "$DIR/ports")
        if [ -n "${FILEREPO_PORT_BASE:-}" ] && [ "$FILEREPO_PORT_BASE" != "$base" ]; then
            [ "$1" = keep ] && die "instance uses ports $base..; FILEREPO_PORT_BASE=$FILEREPO_PORT_BASE differs"
            base=""
        elif ! block_free "$base" "$used"; then
            [ "$1" = keep ] && die "ports $base..$((base + 9)) of this instance are taken by another process"
            say "ports $base..$((base + 9)) are taken now; choosing others"
            base=""
        fi
    fi
    if [ -z "$base" ] && [ -n "${FILEREPO_PORT_BASE:-}" ]; then
        base=$FILEREPO_PORT_BASE
        case $base in *[!0-9]*|"") die "FILEREPO_PORT_BASE must be a number" ;; esac
        if [ "$base" -lt 1024 ] || [ "$base" -gt 65526 ]; then
            die "FILEREPO_PORT_BASE must be in 1024..65526 (ejabberd runs unprivileged)"
        fi
        block_free "$base" "$used" || die "FILEREPO_PORT_BASE=$base: a port in $base..$((base + 9)) is in use"
    fi
    if [ -z "$base" ]; then
        start=$((RANDOM % 1000))
        for i in $(seq 0 999); do
            base=$((20000 + 10 * ((start + i) % 1000)))
            block_free "$base" "$used" && break
            base=""
        done
        [ -n "$base" ] || die "no free block of 10 ports in 20000-29999"
    fi
    echo "$base" >"$DIR/ports"
    set_ports "$base"
}

set_ports() {
    PORT_BASE=$1
    C2S_PORT=$1
    COMPONENT_PORT=$(($1 + 1))
    PROXY65_PORT=$(($1 + 2))
    DIST_PORT=$(($1 + 3))
}

# Secrets and accounts are made once and kept with the data, so a restart
# (or a later start of a stopped DIR) keeps them valid.
make_secrets() {
    local mask
    mask=$(umask)
    umask 077
    [ -s "$DIR/component.secret" ] || randhex 16 >"$DIR/component.secret"
    chmod 0600 "$DIR/component.secret"
    [ -s "$EJDIR/cookie" ] || randhex 16 >"$EJDIR/cookie"
    if [ ! -s "$DIR/accounts" ]; then
        local a
        for a in $ACCOUNTS; do echo "$a $(randhex 8)"; done >"$DIR/accounts"
    fi
    # Node name: derived from the first port block plus a random tag, and
    # kept (mnesia's schema is bound to it) even if the ports change later.
    [ -s "$EJDIR/node" ] || echo "filerepo-$PORT_BASE-$(randhex 3)@localhost" >"$EJDIR/node"
    umask "$mask"
}

# Compile the node-tree module into DIR/ejabberd/modules/ebin when missing or stale.
build_nodetree() {
    local beam=$EJMOD/nodetree_filerepo.beam
    [ -f "$NODETREE_SRC" ] || die "missing $NODETREE_SRC"
    if [ ! -f "$beam" ] || [ "$NODETREE_SRC" -nt "$beam" ]; then
        erlc -I "$EJ_LIB/include" -pa "$EJ_LIB/ebin" -o "$EJMOD" "$NODETREE_SRC" ||
            die "cannot compile $NODETREE_SRC"
    fi
}

make_cert() {
    [ -s "$EJCFG/cert.pem" ] && return 0
    command -v openssl >/dev/null || die "FILEREPO_XMPP_TLS=1 needs openssl"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$XMPP_DOMAIN" \
        -addext "subjectAltName=DNS:$XMPP_DOMAIN,DNS:*.$XMPP_DOMAIN" \
        -keyout "$EJCFG/key.pem" -out "$EJCFG/crt.pem" 2>/dev/null
    cat "$EJCFG/key.pem" "$EJCFG/crt.pem" >"$EJCFG/cert.pem"
    rm -f "$EJCFG/key.pem" "$EJCFG/crt.pem"
}

# Rewritten at every start: ports may have moved and the script may be newer.
write_ejabberd_config() {
    local tls_top="" tls_c2s="" node cookie secret
    node=$(ej_node)
    cookie=$(cat "$EJDIR/cookie")
    secret=$(cat "$DIR/component.secret")
    save_options
    if [ "$XMPP_TLS" = 1 ]; then
        make_cert
        tls_top="certfiles:
  - $EJCFG/cert.pem"
        tls_c2s="    starttls: true"
    fi

    # ejabberdctl sources this (as root, then again as ejabberd).
    cat >"$EJCFG/ejabberdctl.cfg" <<EOF
# Generated by tools/services.sh for the instance in $DIR
ERLANG_NODE=$node
ERL_DIST_PORT=$DIST_PORT
ERL_OPTIONS="-pa $EJMOD -kernel inet_dist_use_interface {127,0,0,1} -env ERL_CRASH_DUMP_BYTES 0"
SPOOL_DIR=$EJDIR/spool
LOGS_DIR=$EJDIR/logs
EJABBERD_LOG_PATH=$EJDIR/logs/ejabberd.log
EJABBERD_PID_PATH=$EJDIR/ejabberd.pid
CONTRIB_MODULES_PATH=$EJDIR/contrib
CONTRIB_MODULES_CONF_DIR=$EJDIR/contrib/conf
EJABBERD_BYPASS_WARNINGS=true
EOF
    # The cookie goes in vm.args (0600), read by ejabberdctl for the server
    # and for every control command. Note erl still puts it on the VM's
    # command line (visible in ps); the distribution port is loopback-only.
    echo "-setcookie $cookie" >"$EJCFG/vm.args"
    # Resolve names from the file only: no DNS on a machine without network.
    cat >"$EJCFG/inetrc" <<'EOF'
{lookup, [file]}.
{host, {127,0,0,1}, ["localhost"]}.
EOF

    cat >"$EJCFG/ejabberd.yml" <<EOF
# Generated by tools/services.sh for the instance in $DIR (tests/demo only).
hosts:
  - $XMPP_DOMAIN
loglevel: info
log_rotate_count: 0
$tls_top
auth_method: internal
auth_password_format: plain
default_db: mnesia
# Nothing leaves this machine: refuse server-to-server at once (no DNS waits).
s2s_access: none

listen:
  -
    port: $C2S_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 4194304
    backlog: 128
    shaper: c2s_shaper
    access: c2s
$tls_c2s
  -
    # XEP-0114 external components: the filerepo daemon. A listener-wide
    # password (no hosts:) accepts ANY component domain with the secret, so
    # tests can run several daemons (files-XXXX.$XMPP_DOMAIN) side by side.
    port: $COMPONENT_PORT
    ip: "127.0.0.1"
    module: ejabberd_service
    max_stanza_size: 4194304
    backlog: 128
    shaper: component_shaper
    password: "$secret"

acl:
  local:
    user_regexp: ""
  # files.$XMPP_DOMAIN and files-*.$XMPP_DOMAIN (per-test daemons).
  filerepo_component:
    server_glob: "files*.$XMPP_DOMAIN"

access_rules:
  local:
    allow: local
  c2s:
    deny: blocked
    allow: all
  # One rule per line = OR (several ACLs under one allow would mean AND).
  pubsub_createnode:
    - allow: local
    - allow: filerepo_component

# The packaged default throttles clients to a few KB/s; no shaping here.
shaper_rules:
  c2s_shaper: none
  s2s_shaper: none
  component_shaper: none

modules:
  mod_adhoc: {}
  mod_caps: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_pubsub:
    host: "pubsub.$XMPP_DOMAIN"
    access_createnode: pubsub_createnode
    plugins:
      - flat
    # tools/ejabberd/nodetree_filerepo.erl: collections contain their children.
    nodetree: filerepo
    max_items_node: 100000
    max_nodes_discoitems: infinity
  mod_proxy65:
    host: "proxy.$XMPP_DOMAIN"
    ip: 127.0.0.1
    hostname: 127.0.0.1
    port: $PROXY65_PORT
    shaper: none
EOF
    chown -R ejabberd:ejabberd "$EJCFG"
    chmod 0600 "$EJCFG/ejabberd.yml" "$EJCFG/vm.args"
}

register_accounts() {
    local have a pass pids=""
    have=" $(ejctl registered_users "$XMPP_DOMAIN" | tr '\n' ' ') "
    while read -r a pass; do
        case $have in *" $a "*) continue ;; esac
        # Each ejabberdctl call boots an Erlang VM (~0.5 s): run them together.
        ejctl register "$a" "$XMPP_DOMAIN" "$pass" >/dev/null & pids="$pids $!"
    done <"$DIR/accounts"
    for a in $pids; do wait "$a" || die "account registration failed"; done
}

ej_fail() {
    if [ -s "$EJDIR/logs/ejabberd.log" ]; then
        echo "---- $EJDIR/logs/ejabberd.log (tail)" >&2
        tail -n 30 "$EJDIR/logs/ejabberd.log" >&2
    else
        echo "(no ejabberd log: the Erlang VM itself did not come up;" \
             "is distribution port $DIST_PORT free and bindable?)" >&2
    fi
    ls "$EJDIR"/logs/erl_crash_* >&2 2>/dev/null || true
    stop_xmpp >&2
    die "$1"
}

start_xmpp() {
    local mode=${1:-any} t0 i
    if ej_running; then
        set_ports "$(cat "$DIR/ports")"
        say "ejabberd already running in $EJDIR (node $(ej_node), c2s port $C2S_PORT)"
        return 0
    fi
    t0=$(now)
    install -d -o ejabberd -g ejabberd -m 0755 "$EJDIR" "$EJCFG" "$EJDIR/spool" \
        "$EJDIR/logs" "$EJDIR/modules" "$EJMOD" "$EJDIR/contrib" "$EJDIR/contrib/conf"
    # Serialise port choice with other starting instances until ours listen.
    exec 9>>"$PORT_LOCK"
    flock 9
    choose_ports "$mode"
    make_secrets
    build_nodetree
    write_ejabberd_config
    chown -R ejabberd:ejabberd "$EJDIR"
    chmod 0600 "$EJDIR/cookie"
    # fd 9 (the lock) must not be inherited by the long-running VM.
    ejctl start 9>&- || ej_fail "ejabberdctl start failed"
    # Ready = every listener accepts and the node answers `status`.
    for i in $(seq 600); do
        port_open "$C2S_PORT" && port_open "$COMPONENT_PORT" && port_open "$PROXY65_PORT" && break
        [ "$i" -gt 20 ] && ! ej_running && ej_fail "ejabberd exited during start-up"
        sleep 0.1
    done
    port_open "$C2S_PORT" || ej_fail "ejabberd c2s port $C2S_PORT not open after 60 s"
    flock -u 9
    ejctl status >/dev/null || ej_fail "ejabberd does not answer 'status'"
    say "ejabberd ready in $(since "$t0") s (node $(ej_node), c2s 127.0.0.1:$C2S_PORT)"
    t0=$(now)
    register_accounts
    say "accounts ready in $(since "$t0") s ($ACCOUNTS @$XMPP_DOMAIN)"
}

stop_xmpp() {
    local pids pid i
    pids=$(ej_pids)
    if [ -n "$pids" ]; then
        # Children (erl_child_setup, inet_gethost) must go too.
        pids="$pids $(for pid in $pids; do pgrep -P "$pid"; done | tr '\n' ' ')"
        # SIGTERM makes the Erlang VM shut down cleanly (init:stop), like
        # `ejabberdctl stop` but without booting a control VM first.
        for pid in $(ej_pids); do kill -TERM "$pid" 2>/dev/null || true; done
        for i in $(seq 300); do
            ej_running || break
            sleep 0.1
        done
        if ej_running; then say "ejabberd did not stop within 30 s"; else say "ejabberd stopped"; fi
    fi
    kill_leftovers ejabberd ejabberd "$pids $(ej_pids)"
    rm -f "$EJDIR/ejabberd.pid"
}

# ---------------------------------------------------------------- common

# PIDs whose command line contains the fixed string $1.
pids_with() {
    ps -ww -eo pid=,args= | FR_A="$1" awk 'index($0 " ", ENVIRON["FR_A"]) { print $1 }'
}

# Alive = exists and is not a zombie (PID 1 here may reap exited servers late).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
}

# Last resort: SIGKILL what of this instance ($3: pids seen before the stop)
# is still alive, and still runs as the service user $2 (guards pid reuse).
kill_leftovers() {
    local what=$1 user=$2 pid left=""
    for pid in $(echo "$3" | tr ' ' '\n' | sort -un); do
        alive "$pid" && [ "$(ps -o user= -p "$pid")" = "$user" ] && left="$left $pid"
    done
    [ -z "$left" ] && return 0
    say "$what: processes still alive after stop:$left — sending SIGKILL"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.2
}

write_env() {
    local f=$DIR/services.env a pass up
    [ -f "$DIR/ports" ] && set_ports "$(cat "$DIR/ports")"
    {
        echo "# Written by tools/services.sh; KEY=VALUE, sh-sourceable."
        echo "FILEREPO_SERVICES_DIR=$DIR"
        echo "PGHOST=$PGDIR"
        echo "PGPORT=5432"
        echo "PGUSER=filerepo"
        echo "PGDATABASE=filerepo"
        # A libpq connection URI (PQconnectdb, psql) free of spaces and of
        # '&' (sh!): the socket directory is percent-encoded as the host.
        echo "FILEREPO_PG_CONNINFO=postgresql://filerepo@$(echo "$PGDIR" | sed 's|/|%2F|g; s|+|%2B|g'):5432/filerepo"
        echo "XMPP_DOMAIN=$XMPP_DOMAIN"
        echo "XMPP_HOST=127.0.0.1"
        echo "XMPP_C2S_PORT=${C2S_PORT:-}"
        echo "XMPP_TLS=$XMPP_TLS"
        echo "XMPP_COMPONENT_PORT=${COMPONENT_PORT:-}"
        echo "XMPP_COMPONENT_JID=files.$XMPP_DOMAIN"
        echo "XMPP_COMPONENT_SECRET_FILE=$DIR/component.secret"
        echo "XMPP_PUBSUB_JID=pubsub.$XMPP_DOMAIN"
        echo "XMPP_PROXY65_JID=proxy.$XMPP_DOMAIN"
        echo "XMPP_PROXY65_HOST=127.0.0.1"
        echo "XMPP_PROXY65_PORT=${PROXY65_PORT:-}"
        echo "XMPP_ACCOUNTS=$(echo "$ACCOUNTS" | tr ' ' ',')"
        if [ -f "$DIR/accounts" ]; then
            while read -r a pass; do
                up=$(echo "$a" | tr '[:lower:]' '[:upper:]')
                echo "XMPP_USER_$up=$a@$XMPP_DOMAIN"
                echo "XMPP_PASS_$up=$pass"
            done <"$DIR/accounts"
        fi
    } >"$f.tmp"
    chmod 0600 "$f.tmp"
    mv "$f.tmp" "$f"
}

status() {
    local ok=0
    if pg_running; then
        say "postgresql: running (pid $(pg_pid), socket $PGDIR)"
    else
        say "postgresql: stopped"; ok=1
    fi
    if ej_running; then
        set_ports "$(cat "$DIR/ports")"
        if ejctl status >/dev/null 2>&1; then
            say "ejabberd: running (pid $(ej_pids | tr '\n' ' ')node $(ej_node), c2s $C2S_PORT, component $COMPONENT_PORT, proxy65 $PROXY65_PORT)"
        else
            say "ejabberd: process up but not answering (node $(ej_node))"; ok=1
        fi
    else
        say "ejabberd: stopped"; ok=1
    fi
    [ -f "$DIR/services.env" ] && say "env: $DIR/services.env"
    return $ok
}

# EXIT trap of `start`: stop the PostgreSQL this run started if start failed.
undo_pg() {
    if [ "$1" -ne 0 ] && [ "$pg_was_up" = 0 ]; then
        say "start failed: stopping postgresql again"
        stop_pg
    fi
}

# ---------------------------------------------------------------- main

[ $# -eq 2 ] || usage
cmd=$1
case $cmd in
    start|start-*|restart|restart-*) setup_dir "$2" create ;;
    stop|stop-*) setup_dir "$2" stop ;;
    status) setup_dir "$2" status ;;
    *) usage ;;
esac

case $cmd in
    start)
        if pg_running && ej_running; then
            say "already running in $DIR"
            write_env
            exit 0
        fi
        pg_was_up=0
        pg_running && pg_was_up=1
        start_pg
        # A half-started instance is worse than none: undo PostgreSQL if
        # ejabberd fails (ej_fail has already stopped ejabberd).
        trap 'undo_pg $?' EXIT
        start_xmpp any
        trap - EXIT
        write_env
        say "env: $DIR/services.env"
        ;;
    stop)         stop_xmpp; stop_pg ;;
    restart)      stop_xmpp; stop_pg; start_pg; start_xmpp any; write_env ;;
    status)       status ;;
    start-xmpp)   start_xmpp any; write_env ;;
    stop-xmpp)    stop_xmpp ;;
    restart-xmpp) stop_xmpp; start_xmpp keep; write_env ;;
    start-pg)     start_pg; write_env ;;
    stop-pg)      stop_pg ;;
    restart-pg)   stop_pg; start_pg ;;
    *)            usage ;;
esac
