#!/usr/bin/env bash
# pg_dump keeps the anomaly registry, the scores and the feedback: a restored
# database lists the same anomalies, its model scores exactly as the original,
# and its sequences continue where they were.
set -euo pipefail
src=calo_anomaly_dump_src
dst=calo_anomaly_dump_dst
work=$(mktemp -d)
dump=$work/anomaly.dump
drop_databases() { dropdb --if-exists "$src" 2>/dev/null; dropdb --if-exists "$dst" 2>/dev/null; }
trap 'drop_databases; rm -rf "$work"' EXIT
drop_databases
createdb "$src"
createdb "$dst"

psql -qX -v ON_ERROR_STOP=1 -d "$src" <<'SQL' >/dev/null
CREATE EXTENSION calo_recon;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('T%s', i), format('U%s', i % 9), 'DEBIT', 'BHD', 10 + i % 7, 1,
       1000 - i, 1000 - i - (9 + i % 7),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '13 minutes'
FROM generate_series(1, 400) i;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('BIG', 'U1', 'DEBIT', 'BHD', 5000, 500, 6000, 1500, '2024-01-02 00:00:00+00'),
       ('ODD', 'U2', 'DEBIT', 'BHD', 12, 40, 300, 328, '2024-01-03 00:00:00+00');
SELECT calo_recon.train_model('first', 0.02, 50, 128, 11);
SELECT calo_recon.train_model('dumped', 0.02, 60, 128, 12);
SELECT calo_recon.record_feedback('BIG', 'dismissed', 'known');
SELECT calo_recon.record_feedback('ODD', 'confirmed');
SQL

pg_dump -Fc -d "$src" -f "$dump"
# as the README says, restore with alerts off: reloaded rows are not new
PGOPTIONS="-c calo_recon.alerts=off" pg_restore -d "$dst" "$dump"

query="SELECT m.model_id, m.model_name, m.active, m.threshold, m.features, m.parameters,
              (SELECT count(*) FROM calo_recon.transaction_scores s WHERE s.model_id = m.model_id)
       FROM calo_recon.models m ORDER BY 1;
       SELECT txn_id, score, reason, explanation, verdict, model_name
       FROM calo_recon.anomalies ORDER BY txn_id;
       SELECT txn_id, verdict, note FROM calo_recon.anomaly_verdicts ORDER BY txn_id;"
before=$(psql -qAtX -d "$src" -c "$query")
after=$(psql -qAtX -d "$dst" -c "$query")
if [ "$before" != "$after" ]; then
  echo "anomaly_dump: restored registry, anomalies or verdicts differ"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi

# the restored model scores every row exactly as it did before the dump
rescore="SELECT calo_recon.score_transactions(false);
         SELECT txn_id, score, flagged, explanation FROM calo_recon.transaction_scores
         WHERE model_id = (SELECT model_id FROM calo_recon.models WHERE active) ORDER BY txn_id;"
scores_src=$(psql -qAtX -d "$src" -c "SELECT txn_id, score, flagged, explanation FROM calo_recon.transaction_scores
         WHERE model_id = (SELECT model_id FROM calo_recon.models WHERE active) ORDER BY txn_id;")
scores_dst=$(psql -qAtX -d "$dst" -c "$rescore" | tail -n +2)
if [ "$scores_src" != "$scores_dst" ]; then
  echo "anomaly_dump: the restored model scores differently"
  diff <(echo "$scores_src") <(echo "$scores_dst") | head -20 || true
  exit 1
fi

# sequences were restored too: new models and verdicts do not collide
next=$(psql -qAtX -v ON_ERROR_STOP=1 -d "$dst" -c "
  SELECT (calo_recon.train_model('after_restore', 0.02, 20, 64, 13)).model_id;
  SELECT (calo_recon.record_feedback('T1', 'dismissed')).feedback_id;" | tr '\n' ' ')
if [ "$next" != "3 3 " ]; then
  echo "anomaly_dump: after restore, new model/feedback ids are '$next', expected '3 3 '"
  exit 1
fi
echo "anomaly_dump: ok ($(echo "$after" | wc -l) rows compared)"
