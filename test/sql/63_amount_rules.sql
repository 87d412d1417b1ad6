-- The amount rule per currency (issue 9 item 3): thresholds are rows of
-- calo_recon.amount_thresholds (a currency's own row, else '*'), read by the
-- anomalies view and the amount_rule alert alike; set_amount_threshold()
-- and its bad inputs; the retired session setting refuses to be set.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
LOAD 'calo_recon';

-- the defaults: '*' is the seed's 1000; the Gulf currencies about 1000 SAR
SELECT currency, threshold, builtin, set_by FROM calo_recon.amount_thresholds ORDER BY currency;

-- one row per currency just above and just below its threshold; EUR and JPY
-- have no row of their own and take '*'
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('R-SAR-HI', 'r-sar', 'CREDIT', 'SAR', 1000.01, 0, 0, 1000.01, '2024-03-01 10:00+00'),
       ('R-SAR-LO', 'r-sar', 'DEBIT',  'SAR', 999, 0, 1000.01, 1.01, '2024-03-01 11:00+00'),
       ('R-KWD-HI', 'r-kwd', 'CREDIT', 'KWD', 80.5, 0, 0, 80.5, '2024-03-01 10:00+00'),
       ('R-KWD-LO', 'r-kwd', 'DEBIT',  'KWD', 80, 0, 80.5, 0.5, '2024-03-01 11:00+00'),
       ('R-BHD-HI', 'r-bhd', 'CREDIT', 'BHD', 150, 0, 0, 150, '2024-03-01 10:00+00'),
       ('R-BHD-LO', 'r-bhd', 'DEBIT',  'BHD', 99.999, 0, 150, 50.001, '2024-03-01 11:00+00'),
       ('R-EUR-HI', 'r-eur', 'CREDIT', 'EUR', 1200, 0, 0, 1200, '2024-03-01 10:00+00'),
       ('R-JPY-HI', 'r-jpy', 'CREDIT', 'JPY', 5000, 0, 0, 5000, '2024-03-01 10:00+00');

-- the view and the alerts agree, row by row, with the threshold that applied
SELECT txn_id, currency, amount, threshold, threshold_row FROM calo_recon.amount_rule_hits ORDER BY txn_id;
SELECT txn_id, reason, rule_flag FROM calo_recon.anomalies ORDER BY txn_id;
SELECT txn_id, detail ->> 'currency' AS currency, (detail ->> 'threshold')::numeric AS threshold
FROM calo_recon.alerts WHERE alert_kind = 'amount_rule' ORDER BY txn_id;

-- an analyst's threshold replaces the built-in row, signed with the login
-- role; every reader sees it at once (no setting involved)
SELECT currency, threshold, builtin, set_by = session_user AS signed
FROM calo_recon.set_amount_threshold('kwd', 100);
SELECT currency, threshold, builtin FROM calo_recon.amount_thresholds WHERE currency = 'KWD';
SELECT txn_id FROM calo_recon.anomalies WHERE currency = 'KWD';
-- '*' moves every currency without a row of its own, and only those
SELECT currency, threshold FROM calo_recon.set_amount_threshold('*', 2000);
SELECT txn_id, threshold, threshold_row FROM calo_recon.amount_rule_hits ORDER BY txn_id;
SELECT currency, threshold FROM calo_recon.set_amount_threshold('*', 1000);
-- setting it again updates the row (no second row), signed again
SELECT currency, threshold, builtin FROM calo_recon.set_amount_threshold('KWD', 60);
SELECT count(*) FROM calo_recon.amount_thresholds WHERE currency = 'KWD';
-- the alert of a new row reads the table as it is now
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('R-KWD-NEW', 'r-kwd', 'CREDIT', 'KWD', 70, 0, 0.5, 70.5, '2024-03-01 12:00+00');
SELECT txn_id, (detail ->> 'threshold')::numeric AS threshold FROM calo_recon.alerts
WHERE alert_kind = 'amount_rule' AND txn_id = 'R-KWD-NEW';
-- without a '*' row, currencies without their own row are not flagged
DELETE FROM calo_recon.amount_thresholds WHERE currency = '*';
SELECT txn_id FROM calo_recon.amount_rule_hits WHERE currency IN ('EUR', 'JPY');
SELECT currency, threshold FROM calo_recon.set_amount_threshold('*', 1000);

-- rows set since install are the ones pg_dump keeps
SELECT c.cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS c(cfg, cond)
WHERE e.extname = 'calo_recon' AND c.cfg = 'calo_recon.amount_thresholds'::regclass;
SELECT currency FROM calo_recon.amount_thresholds WHERE NOT builtin ORDER BY currency;

-- bad input
\set VERBOSITY sqlstate
SELECT calo_recon.set_amount_threshold(NULL, 10);
SELECT calo_recon.set_amount_threshold('SAR', NULL);
SELECT calo_recon.set_amount_threshold('SAR', 0);
SELECT calo_recon.set_amount_threshold('SAR', -5);
SELECT calo_recon.set_amount_threshold('SAR', 'NaN');
SELECT calo_recon.set_amount_threshold('SAR', 'Infinity');
SELECT calo_recon.set_amount_threshold('XYZ', 10);
SELECT calo_recon.set_amount_threshold('', 10);
INSERT INTO calo_recon.amount_thresholds (currency, threshold) VALUES ('EUR', 0);
INSERT INTO calo_recon.amount_thresholds (currency, threshold) VALUES ('EUR', 'NaN');
INSERT INTO calo_recon.amount_thresholds (currency, threshold) VALUES ('eur', 10);
\set VERBOSITY default
-- the session setting of 1.1 is retired: setting it says where the rule went
SET calo_recon.amount_threshold = 100;
\set VERBOSITY sqlstate
SET calo_recon.amount_threshold = 100;
ALTER ROLE CURRENT_USER SET calo_recon.amount_threshold = 100;
\set VERBOSITY default
SHOW calo_recon.amount_threshold;
