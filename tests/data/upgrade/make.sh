#!/bin/bash
# Makes the state directory of tests/data/upgrade/schema-N with the hcc
# release that wrote schema N, as a user of that release would: a sync of
# the simulator's servers, queued commands (push, spool, SQL, and a spool
# file not yet ingested), one command leased by a consumer that died, a
# message, and where the release has them an API key, console links and a
# console session. Usage:
#
#     tests/data/upgrade/make.sh OLD_HCC N [SIM_HCC]
#
# OLD_HCC is the release's binary; SIM_HCC the binary whose `hcc sim` plays
# Hetzner when the release has no simulator (default: OLD_HCC). Writes
# schema-N/ beside this script (replacing it), and prints what it made.
# Needs sqlite3 and curl. The key it prints is a throwaway test key.
set -euo pipefail

HCC=$(realpath "$1")
N=$2
SIM_HCC=$(realpath "${3:-$1}")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/schema-$N
WORK=$(mktemp -d)
export HCC_HOME=$WORK/home
unset HCLOUD_TOKEN HCLOUD_ENDPOINT XDG_STATE_HOME HCC_CONSUMER
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

has() { "$HCC" --help | grep -qE "^  $1 "; }
sql() { sqlite3 -cmd '.timeout 5000' "$HCC_HOME/hcc.db" "$@"; }
# Waits up to 20 s for a command to succeed.
until_ok() {
    for _ in $(seq 200); do
        if eval "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "make.sh: timed out waiting for: $1" >&2
    exit 1
}

"$HCC" config show >/dev/null

# Hetzner: the simulator's three servers, synced into `servers`. Actions
# take 3 s, so that the worker killed below dies while one runs.
if has sync; then
    "$SIM_HCC" sim --servers 3 --token upgrade-test-sim-token --action-ms 3000 \
        >"$WORK/sim.out" 2>"$WORK/sim.err" </dev/null &
    PIDS+=($!)
    until_ok "grep -q HCLOUD_ENDPOINT= '$WORK/sim.out'"
    ENDPOINT=$(head -1 "$WORK/sim.out" | sed -E 's/^HCLOUD_ENDPOINT=([^ ]+) .*/\1/')
    "$HCC" config set endpoint "$ENDPOINT" >/dev/null
    echo upgrade-test-sim-token | "$HCC" config set token - >/dev/null
    "$HCC" sync >/dev/null
fi

# The leased command: a worker that runs it and is killed (SIGKILL) while
# the action runs; a release without a worker leases it to a consumer
# (`pull --id`) that never closes it, with a lease of 1 s.
"$HCC" push reboot srv-00001 >/dev/null
if has worker; then
    "$HCC" worker 2>"$WORK/worker.err" &
    WORKER=$!
    PIDS+=($WORKER)
    until_ok "[ \"\$(sql \"SELECT state FROM commands WHERE cmd = 'reboot'\")\" = running ]"
    kill -KILL "$WORKER"
    wait "$WORKER" 2>/dev/null || true
else
    "$HCC" pull --id --lease 1 >/dev/null
fi

# Queued: by `hcc push`, by a spool file ingested, by a panel's INSERT, and
# a spool file still waiting in spool/new.
"$HCC" push stop srv-00002 >/dev/null
drop() {
    printf '%s\n' "$2" >"$HCC_HOME/spool/tmp/$1"
    mv "$HCC_HOME/spool/tmp/$1" "$HCC_HOME/spool/new/$1"
}
drop 1764000000.M1P1.panel 'start srv-00003'
"$HCC" ingest >/dev/null
sql "INSERT INTO commands (cmd, arg) VALUES ('reset', 'srv-00003')"
drop 1764000001.M1P1.panel 'console srv-00002'

"$HCC" put "made by schema $N" >/dev/null

# hcc serve: an API key, two console links (one opened, which records a
# console session), as a billing system uses them.
KEY=
if has apikey; then
    KEY=$("$HCC" apikey add billing --scope console)
    "$HCC" serve --listen 127.0.0.1:0 2>"$WORK/serve.err" &
    SERVE=$!
    PIDS+=($SERVE)
    until_ok "grep -q 'listening on http://' '$WORK/serve.err'"
    BASE=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.err" | head -1 | sed 's/listening on //')
    link() {
        curl -sf -X POST -H "Authorization: Bearer $KEY" \
            "$BASE/api/v1/servers/srv-00002/console-link" |
            sed -E 's/.*"url":"[^"]*\/c\/([^"]+)".*/\1/'
    }
    link >/dev/null
    TOKEN=$(link)
    # Old releases open a link with a GET, later ones show a button there
    # that POSTs.
    curl -s -o /dev/null "$BASE/c/$TOKEN"
    curl -s -o /dev/null -X POST -H "Origin: $BASE" "$BASE/c/$TOKEN"
    kill -TERM "$SERVE"
    wait "$SERVE" 2>/dev/null || true
fi

for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

# Small and self-contained: the WAL checkpointed into the file.
sql 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
sql 'VACUUM' >/dev/null
sql 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
rm -f "$HCC_HOME/hcc.db-wal" "$HCC_HOME/hcc.db-shm"

rm -rf "$OUT"
mkdir -p "$OUT"
cp -a "$HCC_HOME/." "$OUT/"
[ -n "$KEY" ] && printf '%s\n' "$KEY" >"$OUT/api-key"

echo "schema $N: user_version $(sqlite3 "$OUT/hcc.db" 'PRAGMA user_version')"
for table in servers commands messages api_keys console_links console_sessions; do
    if [ -n "$(sqlite3 "$OUT/hcc.db" "SELECT name FROM sqlite_master WHERE name = '$table'")" ]; then
        echo "  $table: $(sqlite3 "$OUT/hcc.db" "SELECT count(*) FROM $table")"
    fi
done
sqlite3 "$OUT/hcc.db" 'SELECT id, cmd, arg, state, lease_owner FROM commands'
du -sh "$OUT"
