#!/bin/bash
# The filerepo demo: a private PostgreSQL and ejabberd, filerepod connected to
# them, and a subscriber's client asking the daemon what it is.
#   tools/demo.sh          run it, show the answer, then stop everything
#   tools/demo.sh --keep   leave it all running (stop: tools/demo.sh --stop)
# Runs as root on a fresh Debian 12 machine: it installs what it needs.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
dir=${FILEREPO_DEMO_DIR:-/tmp/filerepo-demo}
keep=false

stop_all() {
    if [ -f "$dir/filerepod.pid" ]; then
        kill -TERM "$(cat "$dir/filerepod.pid")" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$(cat "$dir/filerepod.pid")" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$dir/filerepod.pid"
        tail -n 1 "$dir/filerepod.log"
    fi
    "$src/tools/services.sh" stop "$dir"
}

case "${1:-}" in
    --keep) keep=true ;;
    --stop) stop_all; exit 0 ;;
    "") ;;
    *) echo "usage: tools/demo.sh [--keep | --stop]" >&2; exit 2 ;;
esac

"$src/tools/deps.sh"
echo "== building filerepo"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null

echo "== starting private PostgreSQL and ejabberd in $dir"
"$src/tools/services.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/services.env"
$keep || trap stop_all EXIT

# An example release directory, with a release already in it.
mkdir -p "$dir/releases/old"
printf 'proj 1.3.0 source\n' >"$dir/releases/old/proj-1.3.0.tar.gz"

cat >"$dir/filerepod.json" <<JSON
// The demo's filerepod configuration (see tools/filerepod.example.json).
{
    "repositories": [
        { "name": "releases", "path": "$dir/releases", "title": "Demo releases" }
    ],
    "indexer": { "settle_ms": 300 },
    "database": { "conninfo": "host=$PGHOST user=$PGUSER dbname=$PGDATABASE" },
    "xmpp": {
        "host": "$XMPP_HOST",
        "port": $XMPP_COMPONENT_PORT,
        "component": "$XMPP_COMPONENT_JID",
        "secret_file": "$XMPP_COMPONENT_SECRET_FILE",
        "name": "filerepo demo"
    },
    "state_dir": "$dir/state"
}
JSON

echo "== starting filerepod"
"$src/build/filerepod" -c "$dir/filerepod.json" >"$dir/filerepod.log" 2>&1 &
echo $! >"$dir/filerepod.pid"
for _ in $(seq 100); do
    grep -q "xmpp: connected" "$dir/filerepod.log" && break
    kill -0 "$(cat "$dir/filerepod.pid")" 2>/dev/null || { cat "$dir/filerepod.log"; exit 1; }
    sleep 0.1
done
cat "$dir/filerepod.log"

echo "== $XMPP_USER_ALICE subscribes to the repository's root collection (filerepo subscribe)"
# The root collection exists once the publisher has drained the start-up rows.
for _ in $(seq 100); do
    "$src/build/filerepo" -c "$dir/filerepod.json" --json status 2>/dev/null |
        grep -q '"outbox_pending":0' && break
    sleep 0.1
done
FILEREPO_XMPP_JID=$XMPP_USER_ALICE FILEREPO_XMPP_PASSWORD=$XMPP_PASS_ALICE \
    "$src/build/filerepo" subscribe --server "$XMPP_HOST:$XMPP_C2S_PORT" --count 1 \
    "$XMPP_PUBSUB_JID" releases >"$dir/subscriber.out" 2>"$dir/subscriber.err" &
subscriber=$!
for _ in $(seq 100); do
    grep -q "subscribed to" "$dir/subscriber.err" && break
    kill -0 $subscriber 2>/dev/null || { cat "$dir/subscriber.err"; exit 1; }
    sleep 0.1
done
cat "$dir/subscriber.err"

echo "== a release team uploads proj-1.4.0.tar.gz (under a temporary name, then renamed)"
head -c 2000000 /dev/urandom >"$dir/releases/proj-1.4.0.tar.gz.part"
mv "$dir/releases/proj-1.4.0.tar.gz.part" "$dir/releases/proj-1.4.0.tar.gz"
# Recorded once the catalog has a revision with exactly these bytes (a demo
# run again on the same directory uploads new bytes: a new revision).
sum=$(sha256sum "$dir/releases/proj-1.4.0.tar.gz" | cut -d' ' -f1)
for _ in $(seq 100); do
    "$src/build/filerepo" -c "$dir/filerepod.json" log releases/proj-1.4.0.tar.gz 2>/dev/null |
        grep -q "$sum" && break
    sleep 0.1
done
grep "index:" "$dir/filerepod.log" | tail -n 2
echo "== the notification $XMPP_USER_ALICE received: node, item (revision), size, sha-256, mirrors"
for _ in $(seq 100); do
    kill -0 $subscriber 2>/dev/null || break
    sleep 0.1
done
kill $subscriber 2>/dev/null || true
cat "$dir/subscriber.out"
echo "== filerepo ls releases"
"$src/build/filerepo" -c "$dir/filerepod.json" ls releases
echo "== filerepo log releases/proj-1.4.0.tar.gz"
"$src/build/filerepo" -c "$dir/filerepod.json" log releases/proj-1.4.0.tar.gz
echo "== sha256sum of the uploaded file, for comparison"
sha256sum "$dir/releases/proj-1.4.0.tar.gz"
echo "== $XMPP_USER_ALICE downloads it from $XMPP_COMPONENT_JID (filerepo get: Jingle, SOCKS5)"
mkdir -p "$dir/download"
rm -f "$dir/download/proj-1.4.0.tar.gz"
(cd "$dir/download" &&
    FILEREPO_XMPP_JID=$XMPP_USER_ALICE FILEREPO_XMPP_PASSWORD=$XMPP_PASS_ALICE \
    "$src/build/filerepo" get --server "$XMPP_HOST:$XMPP_C2S_PORT" \
    "$XMPP_COMPONENT_JID" releases/proj-1.4.0.tar.gz)
sha256sum "$dir/download/proj-1.4.0.tar.gz"
if [ "$(sha256sum "$dir/download/proj-1.4.0.tar.gz" | cut -d' ' -f1)" = "$sum" ]; then
    echo "the download is byte-identical to the upload"
else
    echo "the download differs from the upload" >&2
    exit 1
fi
echo "== the history in git (git --git-dir $dir/state/git/releases.git log --stat)"
git --git-dir "$dir/state/git/releases.git" log --stat --format='%h %s' | cat

echo "== $XMPP_USER_ALICE asks $XMPP_COMPONENT_JID what it is (XEP-0030 disco#info)"
/usr/bin/python3 "$src/tools/demo_query.py" "$dir"

if $keep; then
    echo "== left running: filerepod (log $dir/filerepod.log), PostgreSQL and ejabberd in $dir"
    echo "   stop it all with: tools/demo.sh --stop"
fi
