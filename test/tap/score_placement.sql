-- calo_recon.score_placement(), the per-shard scoring (and storing) of a
-- Citus cluster (README "Scaling out with Citus"): its bad inputs and their
-- SQLSTATEs.
-- On one node no relation is a shard of shard_anchors; the scoring itself
-- is compared with one node's on a real cluster (test/integration/citus.sh,
-- with a currency given a model not among the models: 22023).
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(9);

INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'TAP-SP-' || i, 'tap-sp-' || (i % 3), 'DEBIT', 'SAR', 10 + i % 7, 0, 100, 90 - i % 7,
       timestamptz '2024-07-01 00:00+00' + i * interval '1 hour'
FROM generate_series(1, 40) i;
CREATE TEMP TABLE m AS
SELECT (calo_recon.train_model('tap-sp', 0.05, 10, 32, 7)).model_id;
CREATE TEMP TABLE a AS
SELECT ARRAY[m.model_id] AS ids, ARRAY[m.scaler] AS scalers, ARRAY[m.forest] AS forests,
       ARRAY[m.threshold] AS thresholds
FROM calo_recon.models m WHERE m.active;

SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement(NULL, NULL, true, '{SAR}', a.ids, a.ids, a.scalers,
                                 a.forests, a.thresholds) p$$,
                 '22004', 'anchor_shard must not be NULL', 'a NULL anchor: 22004');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, NULL, '{SAR}', a.ids,
                                 a.ids, a.scalers, a.forests, a.thresholds) p$$,
                 '22004', 'only_new must not be NULL', 'a NULL only_new: 22004');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, true, NULL, a.ids, a.ids,
                                 a.scalers, a.forests, a.thresholds) p$$,
                 '22004', 'currencies must not be NULL', 'NULL currencies: 22004');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, true, '{SAR,NULL}', '{1,2}', a.ids,
                                 a.scalers, a.forests, a.thresholds) p$$,
                 '22004', 'currencies must not contain NULL', 'a NULL currency: 22004');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, true, '{SAR,BHD}', a.ids, a.ids,
                                 a.scalers, a.forests, a.thresholds) p$$,
                 '22023', 'currencies and currency_models must have the same length',
                 'currencies without their models: 22023');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, true, '{SAR}', a.ids, a.ids,
                                 a.scalers, a.forests, '{0.5,0.6}') p$$,
                 '22023', 'model_ids, scalers, forests and thresholds must have the same length',
                 'a model without its parts: 22023');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.shard_anchors'::regclass, NULL, true, '{SAR}', a.ids, a.ids,
                                 a.scalers, a.forests, '{{0.5}}') p$$,
                 '2202E', 'thresholds must be a one-dimensional array', 'a two-dimensional array: 2202E');
SELECT throws_ok($$SELECT p.* FROM a, calo_recon.score_placement('calo_recon.transactions'::regclass, NULL, true, '{SAR}', a.ids, a.ids,
                                 a.scalers, a.forests, a.thresholds) p$$,
                 '22023', NULL, 'not a shard of shard_anchors: 22023');
-- one node: score_transactions() scores here, not through score_placement
SELECT is(calo_recon.score_transactions(false), 40::bigint, 'one node: score_transactions() scores every row');

SELECT * FROM finish();
ROLLBACK;
