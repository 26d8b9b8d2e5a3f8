#!/bin/sh
# pgcost.sh: what one profile download costs PostgreSQL (issue 18).
#
# Starts a private PostgreSQL (fsync and synchronous_commit on, the
# pg_stat_statements module loaded), then for each run creates a fresh
# database, runs bench_download --db on it with K esim-smdp instances, and
# reads PostgreSQL's own counters over the measured window only (seeding and
# start-up excluded; bench_download calls this script back as its --hook):
#
#   transactions  xact_commit + xact_rollback of the database (pg_stat_database)
#   statements    calls summed over pg_stat_statements (track = all, utility on);
#                 "tx control" = BEGIN / SET LOCAL / SET synchronous_commit /
#                 COMMIT / ROLLBACK among them
#   round trips   statements - SET LOCAL - SET synchronous_commit - BEGIN: the
#                 store sends a BEGIN and its SET in one pipeline with the
#                 transaction's first statement, and `SET LOCAL ...; COMMIT`
#                 as one message (src/store/pg.c). Builds before the
#                 pipelined BEGIN sent it as a message of its own: add the
#                 BEGINs back for those. Statements run with
#                 store_run_at_commit travel with the COMMIT (or the next
#                 statement) and are not told apart here: since
#                 store_run_at_commit (issue 18, 65393ef and fe9567c)
#                 subtract 7 per download (the session INSERT, bpp_tx2's two
#                 UPDATEs, the PIR's UPDATE and DELETE, two history INSERTs);
#                 since the session INSERT goes alone as an implicit
#                 transaction (no BEGIN / COMMIT, issue 18 pgcost4) 6.
#   rows written  tup_inserted + tup_updated + tup_deleted (pg_stat_database)
#   PG CPU        run time (schedstat, ns) of the postmaster and all its
#                 children: backends, WAL writer, checkpointer, ...; "backends"
#                 is the SM-DP+'s connections alone
#   ser. fail.    "could not serialize access" + "deadlock detected" lines in
#                 the server log (each one a transaction that the SM-DP+
#                 rolled back and ran again)
#
# The window follows a warm-up (--warmup W, default twice the concurrency:
# W downloads on the same client threads, whose first ones open the SM-DP+'s
# pooled connections, fork their PostgreSQL backends and prepare each
# statement once per connection), so that it shows what a running SM-DP+
# costs per download; --warmup 0 measures from a cold start, as the figures
# in docs/PERFORMANCE.md before "after (6)" were.
#
# Counters are per successful download. pg_stat_database is flushed by idle
# backends at most every 10 s (PostgreSQL 15), so each snapshot waits 11 s.
#
# usage: bench/pgcost.sh [--build DIR] [--downloads N] [--concurrency C]
#                        [--instances K] [--runs R] [--warmup W] [--out FILE]
# PGCOST_VERBOSE=1 also prints each run's statements (calls, rows, text) and
# each table's inserts, updates (of them HOT: no index entry written) and
# deletes;
# PGCOST_PGOPTS adds server options (e.g. "-c log_statement=all");
# PGCOST_BIN_DIR takes esim-smdp and esim-pki from another build (an older
# commit's, for a before/after with the same bench_download).
# Prints one line per run and the median of the runs; --out appends the lines
# to FILE. Needs PostgreSQL's server programs (/usr/lib/postgresql/*/bin or
# ESIM_PG_BINDIR) and a build with -DESIM_BENCH=ON.
set -eu

# ---- the hook: called by bench_download as `pgcost.sh --hook start|end` ----
if [ "${1:-}" = "--hook" ]; then
	: "${PGCOST_DIR:?}" "${PGCOST_DB:?}"
	psql_q() { psql -X -q -A -t -h 127.0.0.1 -p "$PGCOST_PORT" -U esim -d "$PGCOST_DB" -c "$1"; }
	# all PostgreSQL processes, and the client backends (the SM-DP+'s
	# connections, "postgres: esim <db> ...") alone
	pg_cpu() {
		pm=$(head -1 "$PGCOST_DIR/data/postmaster.pid")
		t=0
		b=0
		for p in $pm $(pgrep -P "$pm"); do
			v=$(cut -d' ' -f1 "/proc/$p/schedstat" 2>/dev/null || echo 0)
			t=$((t + v))
			if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^postgres: esim $PGCOST_DB "; then
				b=$((b + v))
			fi
		done
		echo "$t|$b"
	}
	sleep 11 # let idle backends flush pg_stat_database
	cpu=$(pg_cpu)
	db=$(psql_q "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted, xact_rollback FROM pg_stat_database WHERE datname = current_database()")
	logsz=$(wc -c <"$PGCOST_DIR/postgres.log")
	if [ "$2" = start ]; then
		psql_q "SELECT pg_stat_statements_reset()" >/dev/null
		echo "$cpu|$db|$logsz" >"$PGCOST_DIR/start"
		exit 0
	fi
	IFS='|' read -r cpu0 bcpu0 tx0 rows0 rb0 log0 <"$PGCOST_DIR/start"
	IFS='|' read -r cpu bcpu <<EOF
$cpu
EOF
	IFS='|' read -r tx1 rows1 rb1 <<EOF
$db
EOF
	st=$(psql_q "SELECT COALESCE(SUM(calls), 0),
	    COALESCE(SUM(calls) FILTER (WHERE query ~* '^\s*(BEGIN|START|COMMIT|ROLLBACK|SET LOCAL|SET synchronous_commit|END)'), 0),
	    COALESCE(SUM(calls) FILTER (WHERE query ~* '^\s*(SET LOCAL|SET synchronous_commit|BEGIN)'), 0),
	    COALESCE(ROUND(SUM(total_exec_time)::numeric, 1), 0)
	    FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
	    WHERE d.datname = current_database() AND query !~* 'pg_stat'")
	psql_q "SELECT calls, plans, rows, round((mean_exec_time * 1000)::numeric) AS us, left(regexp_replace(query, '\s+', ' ', 'g'), 150)
	    FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
	    WHERE d.datname = current_database() AND query !~* 'pg_stat'
	    ORDER BY calls DESC" >"$PGCOST_DIR/queries.txt"
	# updates and how many of them were HOT (no index touched), per table,
	# since the database was created (seeding updates nothing)
	psql_q "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
	    FROM pg_stat_user_tables WHERE n_tup_upd + n_tup_ins + n_tup_del > 0
	    ORDER BY relname" >"$PGCOST_DIR/tables.txt"
	ser=$(tail -c +"$((log0 + 1))" "$PGCOST_DIR/postgres.log" |
		grep -c -E 'could not serialize access|deadlock detected' || true)
	echo "$((cpu - cpu0))|$((bcpu - bcpu0))|$((tx1 - tx0))|$((rows1 - rows0))|$((rb1 - rb0))|$st|$ser" >"$PGCOST_DIR/end"
	exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../build-bench"
downloads=300
concurrency=32
instances=1
runs=3
warmup=""
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2 ;;
	--downloads) downloads=$2 ;;
	--concurrency) concurrency=$2 ;;
	--instances) instances=$2 ;;
	--runs) runs=$2 ;;
	--warmup) warmup=$2 ;;
	--out) out=$2 ;;
	*) echo "pgcost: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
build=$(cd "$build" && pwd)
[ -n "$warmup" ] || warmup=$((2 * concurrency))
[ -x "$build/bench_download" ] || { echo "pgcost: no $build/bench_download (-DESIM_BENCH=ON)" >&2; exit 2; }
bindir=${ESIM_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bindir/postgres" ] || { echo "pgcost: no PostgreSQL server programs" >&2; exit 77; }

dir=$(mktemp -d /tmp/pgcost-XXXXXX)
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
	chown postgres "$dir"
	as_pg() { runuser -u postgres -- "$@"; }
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$bindir/initdb" -D "$dir/data" -A trust -U esim -E UTF8 --locale=C --no-sync >"$dir/initdb.log"
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o "-p $port \
 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=on \
 -c synchronous_commit=on -c max_connections=200 -c shared_buffers=64MB \
 -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all \
 -c pg_stat_statements.track_utility=on ${PGCOST_PGOPTS:-}" start >/dev/null
trap 'as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1; [ -n "${PGCOST_KEEP:-}" ] || rm -rf "$dir"' EXIT INT TERM

commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "# commit $commit, $downloads downloads after $warmup warm-up ones, concurrency $concurrency, $instances instance(s), PostgreSQL $("$bindir/postgres" --version | awk '{print $3}')"
echo "# per download: tx stmts txctl roundtrips rows pg_cpu_ms backend_cpu_ms pg_exec_ms smdp_cpu_ms ser_fail (total ser_fail, rate/downloads)"
results="$dir/results"
: >"$results"
i=0
while [ "$i" -lt "$runs" ]; do
	i=$((i + 1))
	db="bench$i"
	psql -X -q -h 127.0.0.1 -p "$port" -U esim -d postgres -c "CREATE DATABASE $db" >/dev/null
	psql -X -q -h 127.0.0.1 -p "$port" -U esim -d "$db" -c "CREATE EXTENSION pg_stat_statements" >/dev/null
	rm -f "$dir/end"
	json=$(PGCOST_DIR=$dir PGCOST_DB=$db PGCOST_PORT=$port \
		"$build/bench_download" --bin-dir "${PGCOST_BIN_DIR:-$build}" --db "postgresql://esim@127.0.0.1:$port/$db" \
		--downloads "$downloads" --warmup "$warmup" --concurrency "$concurrency" --instances "$instances" \
		--hook "$here/pgcost.sh --hook" --json 2>"$dir/bench$i.err") || {
		echo "pgcost: run $i failed:" >&2; tail -20 "$dir/bench$i.err" >&2; exit 1; }
	ok=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])')
	smdp=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["server_cpu_s_per_download"]*1e3)')
	IFS='|' read -r cpu bcpu tx rows rb calls ctl setl exec ser <"$dir/end"
	line=$(python3 - "$ok" "$cpu" "$bcpu" "$tx" "$rows" "$calls" "$ctl" "$setl" "$exec" "$ser" "$smdp" <<'EOF'
import sys
ok, cpu, bcpu, tx, rows, calls, ctl, setl, exe, ser, smdp = sys.argv[1:]
ok = int(ok)
f = lambda v: float(v) / ok
print("%.2f %.2f %.2f %.2f %.2f %.3f %.3f %.3f %.3f %.4f %s %.2f%%" % (
    f(tx), f(calls), f(ctl), f(int(calls) - int(setl)), f(rows), f(cpu) / 1e6,
    f(bcpu) / 1e6, f(exe), float(smdp), f(ser), ser, 100.0 * int(ser) / ok))
EOF
)
	echo "run $i: $line"
	[ -z "${PGCOST_VERBOSE:-}" ] || {
		cat "$dir/queries.txt"
		echo "# table|inserted|updated|of them HOT|deleted"
		cat "$dir/tables.txt"
	}
	echo "$line" >>"$results"
done
python3 - "$results" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
cols = list(zip(*rows))
med = [statistics.median(float(v.rstrip('%')) for v in c) for c in cols]
print("median: tx %.2f  statements %.2f (tx control %.2f)  round trips %.2f  rows %.2f  "
      "PG CPU %.3f ms (backends %.3f ms)  PG exec %.3f ms  SM-DP+ CPU %.3f ms  "
      "ser. failures %.4f/download (%.0f, %.2f%%)" % tuple(med))
EOF
if [ -n "$out" ]; then
	cat "$results" >>"$out"
fi
