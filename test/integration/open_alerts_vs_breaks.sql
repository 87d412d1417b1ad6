-- The insert-time alerts against the reconciliation, for the integration
-- scripts (alerts_shuffled.sh, generated.sh): chain breaks, arithmetic
-- breaks, open chain/arithmetic alerts without such a break, such breaks
-- without an open alert, alerts resolved by reconcile() (the insert-time
-- re-checks should have got there first), rows left in alert_queue.
-- resolved_at and resolution are read through to_jsonb so that the query
-- also runs before the columns existed.
WITH alerted AS (
    SELECT a.txn_id, a.alert_kind AS kind FROM calo_recon.alerts a
    WHERE a.alert_kind IN ('chain', 'arithmetic') AND (to_jsonb(a) ->> 'resolved_at') IS NULL),
broken AS (
    SELECT b.txn_id, b.break_kind AS kind FROM calo_recon.balance_breaks b
    WHERE b.break_kind IN ('chain', 'arithmetic'))
SELECT (SELECT count(*) FROM broken WHERE kind = 'chain'),
       (SELECT count(*) FROM broken WHERE kind = 'arithmetic'),
       (SELECT count(*) FROM (SELECT * FROM alerted EXCEPT SELECT * FROM broken) x),
       (SELECT count(*) FROM (SELECT * FROM broken EXCEPT SELECT * FROM alerted) x),
       (SELECT count(*) FROM calo_recon.alerts a
         WHERE (to_jsonb(a) ->> 'resolution') LIKE 'not supported by reconcile()%'),
       (SELECT count(*) FROM calo_recon.alert_queue)
