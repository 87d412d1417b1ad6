-- The peer of bench/anomaly/view.sh: the anomalies view as it was before
-- issue 10 item 7 (1.2 under development until session 6), with the model
-- choice and the amount rule it read, as a plain view bench_anomalies_before.
-- Candidates from the flagged scores of active models, the amount rule and
-- the confirmed verdicts, grouped by txn_id, then each looked up with its
-- model and score.
DROP VIEW IF EXISTS bench_anomalies_before;
CREATE VIEW bench_anomalies_before AS
WITH transaction_models AS (
    SELECT t.txn_id, t.user_id, t.currency,
           coalesce(own.model_id, (SELECT fallback.model_id FROM calo_recon.models fallback
                                   WHERE fallback.active AND fallback.currency IS NULL)) AS model_id,
           t.amount, t.logged_at
    FROM calo_recon.transactions t
    LEFT JOIN calo_recon.models own ON own.active AND own.currency = t.currency
), amount_rule_hits AS (
    SELECT t.txn_id
    FROM calo_recon.transactions t
    LEFT JOIN calo_recon.amount_thresholds own ON own.currency = t.currency
    WHERE t.amount > coalesce(own.threshold, (SELECT fallback.threshold FROM calo_recon.amount_thresholds fallback
                                              WHERE fallback.currency = '*'))
), candidates AS (
    SELECT c.txn_id, bool_or(c.by_rule) AS by_rule
    FROM (SELECT s.txn_id, false AS by_rule
          FROM calo_recon.models a JOIN calo_recon.transaction_scores s ON s.model_id = a.model_id AND s.flagged
          WHERE a.active
          UNION ALL
          SELECT h.txn_id, true FROM amount_rule_hits h
          UNION ALL
          SELECT v.txn_id, false FROM calo_recon.anomaly_verdicts v WHERE v.verdict = 'confirmed') c
    GROUP BY c.txn_id
)
SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at,
       s.score, m.threshold,
       coalesce(s.flagged, false) AS model_flag,
       c.by_rule AS rule_flag,
       CASE WHEN s.flagged AND c.by_rule THEN 'model+amount_rule'
            WHEN s.flagged THEN 'model'
            WHEN c.by_rule THEN 'amount_rule'
            ELSE 'analyst' END AS reason,
       s.explanation,
       v.verdict,
       m.model_name,
       s.attribution
FROM candidates c
JOIN transaction_models t ON t.txn_id = c.txn_id
LEFT JOIN calo_recon.models m ON m.model_id = t.model_id
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = t.txn_id AND s.model_id = t.model_id
LEFT JOIN calo_recon.anomaly_verdicts v ON v.txn_id = t.txn_id
WHERE v.verdict IS DISTINCT FROM 'dismissed'
  AND (s.flagged OR c.by_rule OR v.verdict = 'confirmed');
