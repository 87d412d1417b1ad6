#!/usr/bin/env bash
# calo_recon on a Citus cluster (README "Scaling out with Citus"): a
# coordinator and two workers on this machine (scripts/citus.sh; Citus built
# once from ../shared/vendor/citus, skipped with the reason when it cannot be).
#
# The same generated export (tools/calo_recon_gen, a few thousand
# transactions, plus one replayed transaction id under another user) goes
# into a fresh database on the suite's one-node cluster and into the Citus
# cluster, which follows the README's recipe for an existing database: part
# of the export is ingested before distribute(), the rest after, then a
# later export with a model active.  Every table the ingest and the
# reconciliation write must give the same digest on both (and the views
# balance_breaks and precision_drift), the alerts too (insert-time,
# raise_alerts(), those reconcile() resolves), reconcile() the same counts,
# export_reports(), export_workbook() and export_dashboard() the same files;
# a client's bare INSERT and COPY, and an INSERT inside a DO block, raise on
# the cluster, at the end of the client's statement, the alerts one node
# raises at insert time, and an INSERT sent to a worker raises them at the
# next raise_alerts() (the ingest's rows are not checked twice); an override of a built-in currency replaces
# it on every placement of the reference table; the roles of grant_role() read and run what they may on the cluster; the
# plans show the pushdown (the per-shard reconciliation one task per shard
# on the workers, a user's findings one task).  Also the SQLSTATEs of
# distribute()'s refusals and of a worker without a reference table's shard.
# Prints one line per check; exits 1 on any mismatch.
#
# Runs with the test cluster env exported (PGHOST, PGPORT, CR_ROOT).
#   CITUS_GEN="seed:n"   the export (default 7:3000)
set -uo pipefail
cd "$(dirname "$0")/../.."
TOP=$(pwd)
: "${CR_ROOT:?run with the test cluster env (source scripts/cluster.sh; cluster_start)}"

# Citus first: without it there is nothing to compare
source scripts/citus.sh
if ! citus_build; then
  echo "skipped: Citus cluster: $CITUS_SKIP"
  exit 0
fi

status=0
check() {  # check LABEL EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then echo "ok   $1"
  else echo "FAIL $1: expected [$2], got [$3]"; status=1; fi
}

# one node: the suite's cluster
ONE=(-X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d calo_citus_one)
dropdb --if-exists calo_citus_one 2>/dev/null && createdb calo_citus_one || exit 1
psql "${ONE[@]}" -c "CREATE EXTENSION calo_recon" || exit 1

# distribute() without Citus says so
got=$(psql "${ONE[@]}" -c "DO \$\$ BEGIN PERFORM calo_recon.distribute(); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1)
check "distribute() without Citus: 0A000" "NOTICE:  0A000" "$got"

make -s -C tools calo_recon_gen >/dev/null || { echo "FAIL build tools/calo_recon_gen"; exit 1; }
IFS=: read -r seed n <<<"${CITUS_GEN:-7:3000}"
GEN=$(mktemp -d)
trap 'rm -rf "$GEN" "$CR_ROOT/import/citus-export" "$CR_ROOT/import/citus-replay" "$CR_ROOT/import/citus-late"' EXIT
tools/calo_recon_gen --seed "$seed" --transactions "$n" --out "$GEN/export" >/dev/null 2>&1 || exit 1
# a later export, ingested once a model is active: the insert-time check
# scores its rows (model alerts) besides the balance rules
tools/calo_recon_gen --seed "$((seed + 1))" --transactions 300 --out "$GEN/late" >/dev/null 2>&1 || exit 1
# a transaction id the export stored, delivered again under another user:
# a conflict on one node (the id is the key), and so on the cluster
mkdir -p "$GEN/replay"
first=$(find "$GEN/export" -name '*.gz' | sort | head -n 1)
zcat "$first" | sed -n '/Start syncing the balance {/,/^}/p' | awk '/^}/ {print; exit} {print}' \
  | sed "s/userId: '[^']*'/userId: 'replayed-under-another-user'/" > "$GEN/replay/replay.log"
grep -q "replayed-under-another-user" "$GEN/replay/replay.log" || { echo "FAIL could not build the replay"; exit 1; }
cp -r "$GEN/export" "$CR_ROOT/import/citus-export" && cp -r "$GEN/replay" "$CR_ROOT/import/citus-replay" &&
  cp -r "$GEN/late" "$CR_ROOT/import/citus-late"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"

INGEST="SELECT pg_catalog.count(*) FROM calo_recon.ingest_file('citus-export') a, calo_recon.ingest_file('citus-replay') b"
# a model with a fixed seed, and the scores of every row (score_transactions
# after train_model: none left to score)
TRAIN="SELECT m.training_rows FROM calo_recon.train_model('citus', 0.02, 50, 128, 42) m"
# the first day's files, and a model scoring them before distribute() (on
# both, so that the rest compares): distribute() moves its scores into the
# shards; TRAIN later deactivates it
first_day=$(cd "$GEN" && find export -name '*.gz' | sort | head -n 1 | xargs dirname | sed 's|^export|citus-export|')
FIRST_DAY="SELECT pg_catalog.count(*) FROM calo_recon.ingest_file('$first_day')"
BEFORE="SELECT m.training_rows FROM calo_recon.train_model('before', 0.02, 20, 64, 41) m"
BEFORE_SCORES="SELECT pg_catalog.count(*) || ' ' || pg_catalog.md5(pg_catalog.string_agg(
                 pg_catalog.concat_ws('|', s.txn_id, s.model_id, s.user_id, s.score, s.flagged, s.explanation, s.attribution), E'\n' ORDER BY s.txn_id, s.model_id))
               FROM calo_recon.transaction_scores s JOIN calo_recon.models m ON m.model_id = s.model_id
               WHERE m.model_name = 'before'"
# insert-time alerts of the later rows (model among them), then the alerts
# no inserted row raises (discrepancies, conflicts); rows logged before
# 2024-01-01 (calo_recon.alert_backfill_age, from now() in the same
# transaction) raise none
LATE="SELECT pg_catalog.set_config('calo_recon.alert_backfill_age',
        pg_catalog.date_part('epoch', pg_catalog.now() - '2024-01-01 00:00:00+00')::bigint::text, false);
      SELECT pg_catalog.count(*) FROM calo_recon.ingest_file('citus-late') a, calo_recon.raise_alerts() b"

# Every report the exports write, the whole time and of a period: the CSV
# files, the workbook and the dashboard
EXPORTS="SELECT pg_catalog.count(*) FROM calo_recon.export_reports('citus/reports') a,
                                        calo_recon.export_reports('citus/period', '2024-01-02 00:00+00', '2024-01-04 00:00+00') b,
                                        calo_recon.export_workbook('citus/balance_reports.xlsx') c,
                                        calo_recon.export_dashboard('citus/dashboard.html') d"
# one line per exported file (each entry of the workbook): name and md5, with
# the export's own time (today's date and a time of day) masked
export_digests() {
  python3 - "$1" "$(date -u +%F)" <<'PY'
import datetime, hashlib, os, re, sys, zipfile
top, today = sys.argv[1], sys.argv[2]
# as text, and as a spreadsheet's date serial (days since 1899-12-30)
serial = (datetime.date.fromisoformat(today) - datetime.date(1899, 12, 30)).days
now = re.compile(re.escape(today).encode() + rb"[ T][0-9:.]+Z?|<v>" + str(serial).encode() + rb"(\.[0-9]+)?</v>")
def line(name, data):
    print(name, hashlib.md5(now.sub(b"NOW", data)).hexdigest())
for folder, _, files in sorted(os.walk(top)):
    # the exports' own manifest (what they wrote, when) is not a report
    for f in sorted(x for x in files if x != ".calo_recon_manifest"):
        path = os.path.join(folder, f)
        name = os.path.relpath(path, top)
        if f.endswith(".xlsx"):
            with zipfile.ZipFile(path) as z:
                for entry in sorted(z.namelist()):
                    line(name + ":" + entry, z.read(entry))
        else:
            with open(path, "rb") as fh:
                line(name, fh.read())
PY
}
# Every alert: all but surrogate ids (the alert's, the balance error's and
# the quarantine row's in the detail), times and who; the resolution by
# reconcile() names its time, so only whether there is one
ALERTS="SELECT pg_catalog.concat_ws('|', a.txn_id, a.user_id, a.alert_kind, a.detail - 'error_id' - 'quarantine_id',
                                   a.status, pg_catalog.split_part(a.resolution, ' at ', 1)) AS x
        FROM calo_recon.alerts a"
# The digests: every column but surrogate ids and times of day, in a total order.
DIGESTS=$(cat <<SQL
SELECT 'transactions', pg_catalog.md5(pg_catalog.string_agg(t::text, E'\n' ORDER BY t.txn_id)) FROM calo_recon.transactions t
UNION ALL
SELECT 'findings', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', f.txn_id, f.user_id, f.finding, f.expected, f.actual, f.difference,
                              f.tolerance, f.currency, f.logged_at, f.first_break), E'\n'
         ORDER BY f.txn_id, f.finding)) FROM calo_recon.reconciliation_findings f
UNION ALL
SELECT 'balance_errors', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', e.user_id, e.subscription_balance, e.payment_balance, e.logged_at,
                              e.request_id, e.message_id, e.txn_id, e.source_file), E'\n'
         ORDER BY e.user_id, e.logged_at, e.request_id, e.subscription_balance)) FROM calo_recon.balance_errors e
UNION ALL
SELECT 'rejections', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', r.txn_id, r.user_id, r.current_balance, r.logged_at, r.request_id,
                              r.source_file), E'\n'
         ORDER BY r.user_id, r.logged_at, r.request_id, r.txn_id)) FROM calo_recon.negative_balance_rejections r
UNION ALL
SELECT 'quarantine', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', q.source_file, q.event_no, q.logged_at, q.kind, q.txn_id, q.reason,
                              q.detail, q.raw), E'\n'
         ORDER BY q.source_file, q.event_no, q.reason, q.txn_id)) FROM calo_recon.quarantine q
UNION ALL
SELECT 'log_events', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', l.source_file, l.event_no, l.kind, l.body, l.raw), E'\n'
         ORDER BY l.source_file, l.event_no)) FROM calo_recon.log_events l
UNION ALL
SELECT 'ingested_files', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', i.digest, i.file_name, i.events, i.transactions, i.duplicates,
                              i.conflicts, i.balance_errors, i.rejections, i.quarantined, i.repeated), E'\n'
         ORDER BY i.file_name)) FROM calo_recon.ingested_files i
UNION ALL
SELECT 'balance_breaks (view)', pg_catalog.md5(pg_catalog.string_agg(b::text, E'\n' ORDER BY b.txn_id, b.break_kind))
FROM calo_recon.balance_breaks b
UNION ALL
SELECT 'precision_drift (view)', pg_catalog.md5(pg_catalog.string_agg(d::text, E'\n' ORDER BY d.txn_id, d.drift_kind))
FROM calo_recon.precision_drift d
UNION ALL
-- the views of the report totals (distributed per user, day_totals on the coordinator)
SELECT 'user_summary (view)', pg_catalog.md5(pg_catalog.string_agg(u::text, E'\n' ORDER BY u.user_id, u.currency))
FROM calo_recon.user_summary u
UNION ALL
SELECT 'overdraft_episodes (view)', pg_catalog.md5(pg_catalog.string_agg(o::text, E'\n' ORDER BY o.user_id, o.first_txn_id))
FROM calo_recon.overdraft_episodes o
UNION ALL
SELECT 'daily_summary (view)', pg_catalog.md5(pg_catalog.string_agg(d::text, E'\n' ORDER BY d.day, d.currency))
FROM calo_recon.daily_summary d
UNION ALL
-- in the view's own order, which training follows
SELECT 'features', pg_catalog.md5(pg_catalog.string_agg(f::text, E'\n')) FROM calo_recon.transaction_features f
UNION ALL
SELECT 'model', pg_catalog.md5(pg_catalog.concat_ws('|', m.features, m.scaler, m.forest, m.threshold, m.training_rows,
                                                    m.parameters))
FROM calo_recon.models m WHERE m.active
UNION ALL
SELECT 'scores', pg_catalog.md5(pg_catalog.string_agg(
         pg_catalog.concat_ws('|', s.txn_id, s.model_id, s.user_id, s.score, s.flagged, s.explanation), E'\n' ORDER BY s.txn_id, s.model_id))
FROM calo_recon.transaction_scores s
UNION ALL
-- the scores joined to their transactions, in each shard group on the cluster
SELECT 'anomalies (view)', pg_catalog.count(*) || ' ' || pg_catalog.md5(pg_catalog.string_agg(a::text, E'\n' ORDER BY a.txn_id))
FROM calo_recon.anomalies a
UNION ALL
SELECT 'alerts', pg_catalog.md5(pg_catalog.string_agg(a.x, E'\n' ORDER BY a.x)) FROM ($ALERTS) a
UNION ALL
SELECT 'queue left', pg_catalog.count(*)::text FROM calo_recon.pending_reconcile
UNION ALL
SELECT 'conflict of the replay', pg_catalog.count(*)::text FROM calo_recon.quarantine q
WHERE q.reason = 'conflict' AND q.detail -> 'incoming' ->> 'user_id' = 'replayed-under-another-user'
SQL
)
psql "${ONE[@]}" -c "$FIRST_DAY" -c "$BEFORE" >/dev/null || { echo "FAIL the first day and its model on one node"; exit 1; }
one_before=$(psql "${ONE[@]}" -c "$BEFORE_SCORES") || exit 1
psql "${ONE[@]}" -c "$INGEST" >/dev/null || { echo "FAIL ingest on one node"; exit 1; }
psql "${ONE[@]}" -c "$TRAIN" >/dev/null || { echo "FAIL train_model on one node"; exit 1; }
psql "${ONE[@]}" -c "$LATE" >/dev/null || { echo "FAIL the later ingest and raise_alerts() on one node"; exit 1; }
psql "${ONE[@]}" -c "$EXPORTS" >/dev/null || { echo "FAIL the exports on one node"; exit 1; }
one_exports=$(export_digests "$CR_ROOT/export/citus") || exit 1
RECONCILE="SELECT r::text FROM calo_recon.reconcile() r"
ALERTS_DIGEST="SELECT pg_catalog.count(*) || ' ' || pg_catalog.md5(pg_catalog.string_agg(a.x, E'\n' ORDER BY a.x)) FROM ($ALERTS) a"
RESOLVED="SELECT pg_catalog.count(*) FROM calo_recon.alerts a WHERE a.resolution LIKE 'not supported by reconcile()%'"
one_digests=$(psql "${ONE[@]}" -c "$DIGESTS") || exit 1
# score_transactions(): the later rows (only_new), then every row again; on
# a cluster per shard group on the workers (score_placement)
SCORE_NEW="SELECT calo_recon.score_transactions(true)"
SCORE_ALL="SELECT calo_recon.score_transactions(false)"
SCORES="SELECT pg_catalog.count(*) || ' ' || pg_catalog.md5(pg_catalog.string_agg(
          pg_catalog.concat_ws('|', s.txn_id, s.model_id, s.user_id, s.score, s.flagged, s.explanation, s.attribution), E'\n' ORDER BY s.txn_id, s.model_id))
        FROM calo_recon.transaction_scores s"
one_scored=$(psql "${ONE[@]}" -c "$SCORE_NEW" -c "$SCORES" -c "$SCORE_ALL" -c "$SCORES" | paste -sd'|') || exit 1
# three rows with an open arithmetic alert corrected (new_balance as
# expected): reconcile() no longer supports those alerts and resolves them
CORRECT="SELECT pg_catalog.format('UPDATE calo_recon.transactions SET new_balance = %s WHERE user_id = %L AND txn_id = %L',
                                 a.detail ->> 'expected', a.user_id, a.txn_id)
         FROM calo_recon.alerts a WHERE a.alert_kind = 'arithmetic' AND a.status = 'open' ORDER BY a.txn_id LIMIT 3 \\gexec"
psql "${ONE[@]}" <<<"$CORRECT" >/dev/null || exit 1
one_counts=$(psql "${ONE[@]}" -c "$RECONCILE") || exit 1
one_alerts=$(psql "${ONE[@]}" -c "$ALERTS_DIGEST") || exit 1
one_resolved=$(psql "${ONE[@]}" -c "$RESOLVED") || exit 1
# the corrected rows of legacy users (no txn_type: their balances give their
# direction) queued their users for scoring again (the rescore queue): what
# score_transactions() scores now, on one node, and by the operator below
one_rescored=$(psql "${ONE[@]}" -c "$SCORE_NEW") || exit 1
# deleting the active model deletes its scores (models_delete_scores): how
# many scores before and after
MODEL_DELETED="BEGIN; SELECT pg_catalog.count(*) FROM calo_recon.transaction_scores;
               DELETE FROM calo_recon.models m WHERE m.active;
               SELECT pg_catalog.count(*) FROM calo_recon.transaction_scores; ROLLBACK"
one_model_deleted=$(psql "${ONE[@]}" -c "$MODEL_DELETED" | paste -sd'|') || exit 1
# the first model's scores left: those of rows whose users' earlier history
# the later files changed are gone (the rescore queue, README "Scores")
one_before_kept=$(psql "${ONE[@]}" -c "SELECT pg_catalog.count(*) FROM calo_recon.transaction_scores s
                                      JOIN calo_recon.models m ON m.model_id = s.model_id
                                      WHERE m.model_name = 'before'") || exit 1
# a model's currency scope (model_scope(), which train_model and retraining
# read): PL/pgSQL, since Citus cannot plan a SQL function's parameterised
# query over a distributed table ("could not create distributed plan")
SCOPES="SELECT pg_catalog.string_agg(c || ':' || (SELECT pg_catalog.count(*) FROM calo_recon.model_scope(c)), ' ' ORDER BY c)
        FROM pg_catalog.unnest('{BHD,KWD,SAR}'::text[]) AS c"
one_scopes=$(psql "${ONE[@]}" -c "$SCOPES") || exit 1
# A bare INSERT and a bare COPY, not through the ingest: chain breaks,
# arithmetic breaks, the amount rule and overdrafts of users of their own.
# One node alerts them at insert time; the cluster queues them (alert_queue,
# filled on the shards), and the coordinator (calo_recon preloaded) checks
# the queue at the end of each client statement that inserted
BARE_SQL=$(cat <<'SQL'
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('bare-1', 'bare-user-a', 'CREDIT', 'SAR', 100, 0, 0, 100, '2024-06-01 10:00+00'),
  ('bare-2', 'bare-user-a', 'DEBIT', 'SAR', 30, 0, 90, 60, '2024-06-01 11:00+00'),
  ('bare-3', 'bare-user-a', 'DEBIT', 'SAR', 2000, 0, 60, -1940, '2024-06-01 12:00+00'),
  ('bare-4', 'bare-user-b', 'CREDIT', 'SAR', 10, 0, 0, 15, '2024-06-01 10:00+00');
COPY calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) FROM STDIN WITH (FORMAT csv);
bare-5,bare-user-a,CREDIT,SAR,3000,0,-1940,1060,2024-06-01 13:00+00
bare-6,bare-user-c,DEBIT,SAR,5,0,10,3,2024-06-01 10:00+00
bare-7,bare-user-b,DEBIT,SAR,40,0,10,-30,2024-06-01 11:00+00
\.
SQL
)
# the same rules inserted by a statement inside a function (checked at the
# end of the client's statement on the cluster too) and by one sent to a
# worker (no coordinator there: the queue waits for raise_alerts())
WORKER_ROWS="INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('nested-1', 'nested-user-a', 'CREDIT', 'SAR', 50, 0, 0, 50, '2024-06-02 10:00+00'),
    ('nested-2', 'nested-user-a', 'DEBIT', 'SAR', 20, 0, 40, 20, '2024-06-02 11:00+00'),
    ('nested-3', 'nested-user-b', 'DEBIT', 'SAR', 80, 0, 10, -70, '2024-06-02 10:00+00')"
NESTED_SQL="DO \$\$ BEGIN ${WORKER_ROWS}; END \$\$"
WORKER_ROWS=${WORKER_ROWS//nested-/worker-}
BARE_ALERTS="SELECT pg_catalog.count(*) || ' ' || pg_catalog.md5(pg_catalog.string_agg(a.x, E'\n' ORDER BY a.x))
             FROM ($ALERTS WHERE a.user_id LIKE 'bare-user-%') a"
NESTED_ALERTS=${BARE_ALERTS//bare-user-/nested-user-}
WORKER_ALERTS=${BARE_ALERTS//bare-user-/worker-user-}
BARE_KINDS="SELECT pg_catalog.string_agg(DISTINCT a.alert_kind, ' ' ORDER BY a.alert_kind) FROM calo_recon.alerts a
            WHERE a.user_id LIKE 'bare-user-%'"
psql "${ONE[@]}" <<<"$BARE_SQL" >/dev/null || { echo "FAIL the bare INSERT and COPY on one node"; exit 1; }
one_bare=$(psql "${ONE[@]}" -c "$BARE_ALERTS") || exit 1
one_bare_kinds=$(psql "${ONE[@]}" -c "$BARE_KINDS") || exit 1
psql "${ONE[@]}" -c "$NESTED_SQL" -c "$WORKER_ROWS" >/dev/null || { echo "FAIL the INSERT inside a function on one node"; exit 1; }
one_nested=$(psql "${ONE[@]}" -c "$NESTED_ALERTS") || exit 1
one_worker=$(psql "${ONE[@]}" -c "$WORKER_ALERTS") || exit 1
dropdb calo_citus_one

# the cluster
if ! citus_start calo; then
  echo "skipped: Citus cluster: $CITUS_SKIP"
  exit "$status"
fi
trap 'citus_destroy; rm -rf "$GEN" "$CR_ROOT/import/citus-export" "$CR_ROOT/import/citus-replay" "$CR_ROOT/import/citus-late"' EXIT
echo "cluster: coordinator and $CITUS_WORKERS workers on ports ${CITUS_PORTS[*]} ($CITUS_ROOT)"
cp -r "$GEN/export" "$CITUS_ROOT/import/citus-export" && cp -r "$GEN/replay" "$CITUS_ROOT/import/citus-replay" &&
  cp -r "$GEN/late" "$CITUS_ROOT/import/citus-late"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CITUS_ROOT/import"
CL=(-X -q -At -v ON_ERROR_STOP=1)
psql "${CL[@]}" -c "CREATE EXTENSION calo_recon" || exit 1

# an existing database: the export's first day's files and a model's
# scores of them before distribute(), the rest after
psql "${CL[@]}" -c "$FIRST_DAY" -c "$BEFORE" >/dev/null || { echo "FAIL ingest and train before distribute()"; exit 1; }
# a reader granted on the database before it is distributed: distribute()
# gives it what it needs on the cluster (reapply_grants)
psql "${CL[@]}" -c "CREATE ROLE citus_reader LOGIN" -c "SELECT pg_catalog.count(*) FROM calo_recon.grant_role('citus_reader', 'reader')" >/dev/null || exit 1
got=$(psql "${CL[@]}" -c "SELECT pg_catalog.string_agg(d.table_name || ':' || d.placement || ':' || d.shards, ' ' ORDER BY d.table_name::text) FROM calo_recon.distribute(8) d" 2>/dev/null | tail -n 1)
check "distribute(8)" "calo_recon.alert_queue:distributed:8 calo_recon.balance_errors:distributed:8 calo_recon.currencies:reference:1 calo_recon.negative_balance_rejections:distributed:8 calo_recon.overdraft_episode_totals:distributed:8 calo_recon.pending_reconcile:distributed:8 calo_recon.pending_rescore:distributed:8 calo_recon.reconciliation_findings:distributed:8 calo_recon.shard_anchors:distributed:8 calo_recon.transaction_scores:distributed:8 calo_recon.transactions:distributed:8 calo_recon.user_day_totals:distributed:8 calo_recon.user_totals:distributed:8" "$got"
check "the scores stored before distribute(), now in the shards: cluster = one node" "$one_before|0" \
  "$(psql "${CL[@]}" -c "$BEFORE_SCORES" -c "SELECT pg_catalog.pg_relation_size('calo_recon.transaction_scores')" | paste -sd'|')"
check "the scores stored before distribute(): some" "t" "$([ "${one_before%% *}" -gt 0 ] && echo t || echo f)"
got=$(psql "${CL[@]}" -c "SELECT pg_catalog.count(DISTINCT pg_catalog.get_shard_id_for_distribution_column('calo_recon.shard_anchors', a.user_id)) FROM calo_recon.shard_anchors a")
check "one anchor in each of the 8 shards" "8" "$got"
for call in "distribute()" "distribute(0)"; do
  want=$([ "$call" = "distribute()" ] && echo 55000 || echo 22023)
  got=$(psql "${CL[@]}" -c "DO \$\$ BEGIN PERFORM calo_recon.$call; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1)
  check "$call refused: $want" "NOTICE:  $want" "$got"
done
psql "${CL[@]}" -c "$INGEST" >/dev/null || { echo "FAIL ingest on the cluster"; exit 1; }
# the shards queued the ingest's rows for the alert check, and the ingest,
# which checked them itself, removed them: raise_alerts() checks none again
QUEUED="SELECT pg_catalog.count(*) FROM calo_recon.alert_queue"
check "the ingest left no row queued for the alert check" "0" "$(psql "${CL[@]}" -c "$QUEUED")"
psql "${CL[@]}" -c "$TRAIN" >/dev/null || { echo "FAIL train_model on the cluster"; exit 1; }
psql "${CL[@]}" -c "$LATE" >/dev/null || { echo "FAIL the later ingest and raise_alerts() on the cluster"; exit 1; }
psql "${CL[@]}" -c "$EXPORTS" >/dev/null || { echo "FAIL the exports on the cluster"; exit 1; }
cluster_exports=$(export_digests "$CITUS_ROOT/export/citus") || exit 1
check "the exports wrote reports, period, workbook and dashboard" "t" \
  "$( [ "$(grep -c '^reports/.*\.csv ' <<<"$one_exports")" -ge 10 ] && [ "$(grep -c '^period/.*\.csv ' <<<"$one_exports")" -ge 10 ] &&
      grep -q '^balance_reports.xlsx:xl/worksheets/sheet2.xml ' <<<"$one_exports" && grep -q '^dashboard.html ' <<<"$one_exports" && echo t || echo f)"
while read -r name digest; do
  check "export $name: cluster = one node" "$digest" "$(awk -v n="$name" '$1 == n {print $2}' <<<"$cluster_exports")"
done <<<"$one_exports"

cluster_digests=$(psql "${CL[@]}" -c "$DIGESTS") || exit 1
while IFS='|' read -r name digest; do
  check "$name: cluster = one node" "$digest" "$(grep "^$name|" <<<"$cluster_digests" | cut -d'|' -f2)"
done <<<"$one_digests"
check "the replay is one conflict" "conflict of the replay|1" "$(grep '^conflict of the replay|' <<<"$cluster_digests")"
check "the cluster's features, model and scores are not empty" "$((n + 300))|$n|$n" \
  "$(psql "${CL[@]}" -c "SELECT (SELECT pg_catalog.count(*) FROM calo_recon.transaction_features) || '|' ||
                                (SELECT m.training_rows FROM calo_recon.models m WHERE m.active) || '|' ||
                                (SELECT pg_catalog.count(*) FROM calo_recon.transaction_scores s
                                 JOIN calo_recon.models m ON m.model_id = s.model_id WHERE m.active)")"
# the explanations (amount, currency's minor unit, context: all from the
# shards) are in the scores' digest: some rows must be flagged and explained
check "the cluster explains some flagged rows" "t" \
  "$(psql "${CL[@]}" -c "SELECT pg_catalog.count(*) > 0 FROM calo_recon.transaction_scores s
                         WHERE s.flagged AND s.explanation IS NOT NULL")"
check "score_transactions(true), its scores, (false), its scores: cluster = one node" "$one_scored" \
  "$(psql "${CL[@]}" -c "$SCORE_NEW" -c "$SCORES" -c "$SCORE_ALL" -c "$SCORES" | paste -sd'|')"
check "score_transactions() scored the later rows, then all" "t" \
  "$(IFS='|' read -r new _ all _ <<<"$one_scored"; [ "$new" = 300 ] && [ "$all" = $((n + 300)) ] && echo t || echo f)"
# the scoring ran per shard group on the workers, which store the scores in
# their shards: the coordinator sent one score_placement() task per shard
# (8), to both workers, and no score row (no INSERT or COPY into
# transaction_scores); the same for train_model() (rolled back)
remote_commands() {  # the commands the coordinator sends while running $1
  psql "${CL[@]}" -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" -c "$1" 2>&1 >/dev/null |
    tr '\n' ' ' | sed 's/NOTICE:  issuing /\n/g'
}
placements() {  # per worker, the score_placement() tasks among the commands
  grep -o '^[^:]*calo_recon\.score_placement([^@]*@[^ ]*' | grep -o '@[^ ]*' | sort | uniq -c | awk '{print $2 ":" $1}'
}
writes_scores() { grep -ciE '^(INSERT INTO|COPY) calo_recon\.transaction_scores'; }
log=$(remote_commands "$SCORE_ALL")
remote=$(placements <<<"$log")
check "score_transactions(): 8 per-shard tasks on the workers" "8" \
  "$(awk -F: '{s += $NF} END {print s + 0}' <<<"$remote")"
check "score_transactions(): tasks on both workers" "2" "$(grep -c -e ":${CITUS_PORTS[1]}:" -e ":${CITUS_PORTS[2]}:" <<<"$remote")"
check "score_transactions(): no score row sent to the workers" "0" "$(writes_scores <<<"$log")"
log=$(remote_commands "BEGIN; $TRAIN; ROLLBACK")
check "train_model(): 8 per-shard tasks store its scores" "8" \
  "$(placements <<<"$log" | awk -F: '{s += $NF} END {print s + 0}')"
check "train_model(): no score row sent to the workers" "0" "$(writes_scores <<<"$log")"
# the scores are in the workers' shards, none in the coordinator's table
check "the scores are in the shards: all of them, none on the coordinator" "$((n + 300 + one_before_kept))|0" \
  "$(psql "${CL[@]}" -c "SELECT (SELECT pg_catalog.sum(r.result::bigint) FROM pg_catalog.run_command_on_shards('calo_recon.transaction_scores',
                                        'SELECT pg_catalog.count(*) FROM %s') r) || '|' ||
                                pg_catalog.pg_relation_size('calo_recon.transaction_scores')")"
# deleting a model deletes its scores (models_delete_scores), on every shard
check "deleting the active model deletes its scores: cluster = one node" "$one_model_deleted" \
  "$(psql "${CL[@]}" -c "$MODEL_DELETED" | paste -sd'|')"
check "deleting the active model deleted its scores, not the first model's" "$((n + 300 + one_before_kept))|$one_before_kept" \
  "$one_model_deleted"
# the anomalies view joins a row's score in its shard group: one task per shard
plan=$(psql "${CL[@]}" -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT a.txn_id, a.score, a.explanation FROM calo_recon.anomalies a")
check "anomalies: the scores' join in the 8 per-shard tasks" "8|1" \
  "$(grep '^  Task Count: ' <<<"$plan" | grep -o '[0-9]*$')|$(grep -c 'Query: SELECT .* LEFT JOIN calo_recon\.transaction_scores_[0-9]* s ON (((s\.user_id OPERATOR(pg_catalog\.=) t\.user_id)' <<<"$plan")"
# a worker given a currency's model that is not among the models says so
got=$(psql "${CL[@]}" -c "DO \$\$ BEGIN PERFORM p.* FROM calo_recon.shard_anchors a,
        calo_recon.score_placement(a.tableoid, NULL, true, '{BHD,KWD,SAR}', '{-1,-1,-1}', '{}', '{}', '{}', '{}') p;
        EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1)
check "score_placement() with a currency's model not among the models: 22023" "NOTICE:  22023" "$got"
psql "${CL[@]}" <<<"$CORRECT" >/dev/null || exit 1
check "reconcile() counts: cluster = one node" "$one_counts" "$(psql "${CL[@]}" -c "$RECONCILE")"
check "alerts after reconcile(): cluster = one node" "$one_alerts" "$(psql "${CL[@]}" -c "$ALERTS_DIGEST")"
check "alerts resolved by reconcile(): cluster = one node" "$one_resolved" "$(psql "${CL[@]}" -c "$RESOLVED")"
# every kind the export raises, on the cluster too
check "the cluster raised alerts of each kind" "amount_rule arithmetic chain conflict discrepancy model overdraft" \
  "$(psql "${CL[@]}" -c "SELECT pg_catalog.string_agg(DISTINCT a.alert_kind, ' ' ORDER BY a.alert_kind) FROM calo_recon.alerts a")"
check "reconcile() resolved the corrected rows' alerts" "3" "$one_resolved"
check "model_scope() per currency: cluster = one node" "$one_scopes" "$(psql "${CL[@]}" -c "$SCOPES" 2>&1)"


# The roles of grant_role() on the cluster: Citus runs a view's shard
# queries, and the per-shard functions there, with the caller's rights.  A
# reader reads every report as the owner does (and runs no job), an analyst
# the features, an operator runs the jobs (refresh() among them).
psql "${CL[@]}" -c "CREATE ROLE citus_analyst LOGIN" -c "CREATE ROLE citus_operator LOGIN" -c "CREATE ROLE citus_monitor LOGIN" \
  -c "SELECT pg_catalog.count(*) FROM calo_recon.grant_role('citus_analyst', 'analyst')" \
  -c "SELECT pg_catalog.count(*) FROM calo_recon.grant_role('citus_operator', 'operator')" \
  -c "SELECT pg_catalog.count(*) FROM calo_recon.grant_role('citus_monitor', 'monitor')" >/dev/null || exit 1
# a monitor reads the health on the cluster (its counts of the distributed
# tables through health_figures(), with no right on them) and the sizes of
# the distributed tables are their shards'
check "a monitor reads the health: no user queued, the shards' sizes" \
  "0|$(psql "${CL[@]}" -c "SELECT pg_catalog.citus_total_relation_size('calo_recon.transactions')")" \
  "$(psql "${CL[@]}" -U citus_monitor -c "SELECT h.users_pending_reconcile || '|' || (h.table_bytes ->> 'transactions')
                                          FROM calo_recon.health h" 2>&1)"
got=$(psql "${CL[@]}" -U citus_monitor -c "DO \$\$ BEGIN PERFORM calo_recon.check_health(); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1)
# no refresh() has run on the cluster: unhealthy (RH001), not refused
check "a monitor runs check_health(): RH001, no permission error" "NOTICE:  RH001" "$got"
got=$(psql "${CL[@]}" -U citus_monitor -c "SELECT pg_catalog.count(*) FROM calo_recon.pending_reconcile" 2>&1)
check "a monitor reads no wallet table on the cluster: 42501" "t" "$([[ "$got" == *"permission denied"* ]] && echo t || echo f)"
REPORTS="SELECT pg_catalog.string_agg(v || ':' || (pg_catalog.xpath('/row/c/text()',
           pg_catalog.query_to_xml('SELECT pg_catalog.count(*) AS c FROM calo_recon.' || v, false, true, '')))[1]::text, ' ' ORDER BY v)
         FROM pg_catalog.unnest('{transactions,overdrafts,overdraft_episodes,anomalies,discrepancies,balance_breaks,precision_drift,user_summary,daily_summary,as_of}'::text[]) AS v"
owner_reports=$(psql "${CL[@]}" -c "$REPORTS")
check "the reader reads every report as the owner does" "$owner_reports" "$(psql "${CL[@]}" -U citus_reader -c "$REPORTS" 2>&1)"
check "the analyst reads the features" "$((n + 300))" \
  "$(psql "${CL[@]}" -U citus_analyst -c "SELECT pg_catalog.count(*) FROM calo_recon.transaction_features" 2>&1)"
got=$(psql "${CL[@]}" -U citus_reader -c "DO \$\$ BEGIN PERFORM calo_recon.reconcile(); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1)
check "the reader runs no job: 42501" "NOTICE:  42501" "$got"
# (every row is scored already, but those of the corrected rows' users)
check "the operator runs the jobs: reconcile, raise_alerts, scoring, exports, refresh" "$one_counts|true|$one_rescored|true|succeeded" \
  "$(psql "${CL[@]}" -U citus_operator -c "SELECT (SELECT r::text FROM calo_recon.reconcile() r) || '|' ||
                                                  (SELECT pg_catalog.count(*) > 0 FROM calo_recon.raise_alerts()) || '|' ||
                                                  calo_recon.score_transactions(true) || '|' ||
                                                  (SELECT pg_catalog.count(*) > 0 FROM calo_recon.export_reports('citus/operator')) || '|' ||
                                                  (calo_recon.refresh('citus-late')).status" 2>&1)"

# the bare INSERT and COPY: each client statement's rows, queued on the
# shards, are checked at its end on the coordinator: what one node raised
# at insert time, nothing left queued.  Inside one transaction, before
# COMMIT, as a trigger's alerts would be.
check "the bare rows raise amount_rule, arithmetic, chain and overdraft alerts on one node" "4" \
  "$(tr ' ' '\n' <<<"$one_bare_kinds" | grep -cxE 'amount_rule|arithmetic|chain|overdraft')"
check "the bare INSERT and COPY: their alerts at insert time, cluster = one node; none queued" "$one_bare|0" \
  "$(psql "${CL[@]}" <<<"BEGIN;
$BARE_SQL
$BARE_ALERTS;
$QUEUED;
COMMIT;" | paste -sd'|')"
# inside a DO block: checked at the end of the client's statement too
check "the rows inserted inside a function raise chain and overdraft alerts on one node" "t" \
  "$([ "${one_nested%% *}" -ge 2 ] && echo t || echo f)"
check "the INSERT inside a DO block: its alerts at its end, cluster = one node; none queued" "$one_nested|0" \
  "$(psql "${CL[@]}" -c "$NESTED_SQL" -c "$NESTED_ALERTS" -c "$QUEUED" | paste -sd'|')"
# sent to a worker: queued on the shards, no alert yet (the alerts live on
# the coordinator); the next raise_alerts() raises what one node raised at
# insert time and empties the queue
psql "${CL[@]}" -p "${CITUS_PORTS[1]}" -c "$WORKER_ROWS" >/dev/null || { echo "FAIL the INSERT sent to a worker"; exit 1; }
check "the INSERT sent to a worker: 3 rows queued, no alert yet; the health counts them" "3|0|3" \
  "$(psql "${CL[@]}" -c "$QUEUED" -c "SELECT pg_catalog.count(*) FROM calo_recon.alerts a WHERE a.user_id LIKE 'worker-user-%'" | paste -sd'|')|$(
     psql "${CL[@]}" -U citus_monitor -c "SELECT h.alert_checks_queued FROM calo_recon.health h")"
psql "${CL[@]}" -c "SELECT pg_catalog.count(*) FROM calo_recon.raise_alerts()" >/dev/null || { echo "FAIL raise_alerts() after the queued rows"; exit 1; }
check "the queued rows' alerts after raise_alerts(): cluster = one node" "$one_worker" "$(psql "${CL[@]}" -c "$WORKER_ALERTS")"
check "raise_alerts() emptied the queue" "0" "$(psql "${CL[@]}" -c "$QUEUED")"
check "resolved, the bare and queued rows' alerts are not raised again by raise_alerts()" "0" \
  "$(psql "${CL[@]}" -c "SELECT pg_catalog.count(*) FROM calo_recon.alerts a, calo_recon.resolve_alert(a.alert_id, 'seen') r
                         WHERE a.user_id ~ '^(bare|nested|worker)-user-' AND a.resolved_at IS NULL" \
                     -c "SELECT pg_catalog.count(*) FROM calo_recon.raise_alerts()" \
                     -c "SELECT pg_catalog.count(*) FROM calo_recon.alerts a
                         WHERE a.user_id ~ '^(bare|nested|worker)-user-' AND a.resolved_at IS NULL" | tail -n 1)"

# an override of a built-in currency (an INSERT of its code) replaces the
# built-in row on every placement of the reference table, as on one node
check "a built-in currency overridden: the user's row on every placement" "JPY:2:false JPY:2:false JPY:2:false" \
  "$(psql "${CL[@]}" -c "INSERT INTO calo_recon.currencies (code, minor_unit) VALUES ('JPY', 2)" \
                     -c "SELECT pg_catalog.string_agg(p.result, ' ' ORDER BY p.nodeport)
                         FROM pg_catalog.run_command_on_placements('calo_recon.currencies',
                           \$\$SELECT pg_catalog.string_agg(c.code || ':' || c.minor_unit || ':' || c.builtin, ' ') FROM %s c WHERE c.code = 'JPY'\$\$) p")"

# A worker without its copy of a reference table (here its shard renamed,
# in a transaction rolled back) says so: 55000
worker=${CITUS_PORTS[1]}
got=$(psql "${CL[@]}" -p "$worker" 2>&1 <<SQL
BEGIN;
SET LOCAL citus.enable_manual_changes_to_shards = on;
SELECT pg_catalog.format('ALTER TABLE %s RENAME TO currencies_elsewhere', pg_catalog.shard_name('calo_recon.currencies', s.shardid))
FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = 'calo_recon.currencies'::pg_catalog.regclass \gexec
-- the shards of the anchors on this worker, each called as reconcile() does
SET LOCAL citus.override_table_visibility = off;
DO \$\$ BEGIN
  PERFORM f.* FROM pg_catalog.pg_class c, calo_recon.transaction_features_placement(c.oid, NULL, false) f
  WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relname ~ '^shard_anchors_[0-9]+\$';
EXCEPTION WHEN OTHERS THEN RAISE NOTICE '% %', SQLSTATE, SQLERRM; END \$\$;
ROLLBACK;
SQL
)
check "a worker without the reference table's shard: 55000" \
  "NOTICE:  55000 reference table calo_recon.currencies has no placement on this node" "$(grep NOTICE <<<"$got")"

# the pushdown: the per-shard reconciliation is one task per shard, run on
# the workers; a user's findings are one task on one worker
plan=$(psql "${CL[@]}" -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT calo_recon.reconcile_placement(a.tableoid, NULL) FROM calo_recon.shard_anchors a")
check "reconcile pushdown: 8 tasks" "1" "$(grep -c 'Task Count: 8' <<<"$plan")"
check "reconcile pushdown: the call is in the workers' query" "1" \
  "$(grep -c 'Query: SELECT calo_recon.reconcile_placement(tableoid, NULL::text\[\]) AS reconcile_placement FROM calo_recon.shard_anchors_' <<<"$plan")"
# the ingest's look-up of stored ids by id alone reads an index in each
# shard (the key is (user_id, txn_id) there); seq scans off on the workers
# too, since the shards here are small enough to be read whole
plan=$(psql "${CL[@]}" <<'SQL'
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT t.txn_id FROM calo_recon.transactions t WHERE t.txn_id = ANY ('{a,b}'::text[]);
ROLLBACK;
SQL
)
check "ids looked up by id alone: the txn_id index of the shards" "1" "$(grep -cE '(Bitmap Index Scan on|Index (Only )?Scan using) transactions_txn_id_idx_[0-9]+' <<<"$plan")"
user=$(psql "${CL[@]}" -c "SELECT t.user_id FROM calo_recon.transactions t ORDER BY t.txn_id LIMIT 1")
plan=$(psql "${CL[@]}" -c "EXPLAIN (COSTS OFF) SELECT * FROM calo_recon.reconciliation_findings f WHERE f.user_id = '$user'")
check "a user's findings: one task (router)" "1" "$(grep -c 'Task Count: 1' <<<"$plan")"
exit "$status"
