#!/usr/bin/env bash
# The whole calo_recon job on the bundled sample logs, in a throwaway cluster:
# install what is missing, build, start a private PostgreSQL 15, ingest the
# bundled exports (data/demo and test/data/samples), reconcile, train and
# score the anomaly model, export the CSV reports, the Excel workbook and the
# dashboard page into ./reports, and print a summary.
#   KEEP=1 bash scripts/demo.sh   leaves the cluster running and prints how to connect
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)

bash scripts/install-deps.sh
echo "== build"
make -s >/dev/null

source scripts/cluster.sh
if [ -z "${KEEP:-}" ]; then trap cluster_destroy EXIT; fi
cluster_start
mkdir -p "$CR_ROOT/import/bundled"
cp -r data/demo/. "$CR_ROOT/import/bundled/demo"
cp -r test/data/samples/. "$CR_ROOT/import/bundled/samples"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
echo "== throwaway cluster in $CR_ROOT (socket $PGHOST, port $PGPORT)"

psql -qX -v ON_ERROR_STOP=1 <<'SQL'
\pset footer off
CREATE EXTENSION calo_recon;

\echo == ingest (gzip export trees, junk files counted and skipped)
SELECT * FROM calo_recon.ingest_file('bundled');

\echo == reconcile
SELECT * FROM calo_recon.reconcile();

\echo == train and score the anomaly model (StandardScaler + Isolation Forest, contamination 0.01)
SELECT model_id, model_name, training_rows, round(threshold::numeric, 4) AS threshold, active
FROM calo_recon.train_model(seed => 42);

\echo == refresh (what pg_cron runs on a schedule)
SELECT status, files, transactions, scored FROM calo_recon.refresh();

\echo == export reports
SELECT report, file, rows FROM calo_recon.export_reports('demo') ORDER BY report;
SELECT calo_recon.export_workbook('demo/balance_reports.xlsx') AS workbook_rows;
SELECT calo_recon.export_dashboard('demo/dashboard.html') AS dashboard;

\echo == summary
SELECT
  (SELECT count(*) FROM calo_recon.log_events)                  AS events,
  (SELECT count(*) FROM calo_recon.transactions)                AS transactions,
  (SELECT count(*) FROM calo_recon.quarantine)                  AS quarantined,
  (SELECT count(*) FROM calo_recon.overdrafts)                  AS overdrafts,
  (SELECT count(*) FROM calo_recon.discrepancies)               AS discrepancies,
  (SELECT count(*) FROM calo_recon.precision_drift)             AS precision_drift,
  (SELECT count(*) FROM calo_recon.anomalies)                   AS anomalies;
SELECT break_kind, count(*) AS breaks FROM calo_recon.balance_breaks GROUP BY 1 ORDER BY 1;

\echo == top anomalies of the model, in plain words
SELECT a.txn_id, a.currency, a.amount, round(a.score::numeric, 3) AS score, a.explanation
FROM calo_recon.anomalies a WHERE a.model_flag
ORDER BY a.score DESC, a.txn_id LIMIT 5;
SQL

rm -rf "$TOP/reports"
mkdir -p "$TOP/reports"
cp -r "$CR_ROOT/export/demo/." "$TOP/reports/"
echo "== reports written to $TOP/reports:"
chmod -R a+rX "$TOP/reports"
ls -l "$TOP/reports"
if [ -n "${KEEP:-}" ]; then
  echo "cluster kept: PGHOST=$PGHOST PGPORT=$PGPORT psql -U postgres   (stop: pg_ctl -D $CR_ROOT/data stop)"
fi
