\echo Use "ALTER EXTENSION calo_recon UPDATE TO '1.2'" to load this file. \quit
-- calo_recon 1.1 -> 1.2 (under development: this script may change until 1.2
-- is released, then it is frozen like the scripts before it). Every change to
-- sql/install/*.sql is also written here as a migration.

-- ---------------------------------------------------------------------------
-- Anomaly features and scoring in C (issue 8 item 3, helper "score").
-- OR REPLACE keeps the grants calo_recon.grant_role() gave on the function
-- and the view (a DROP would silently take them from the analysts' roles).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION calo_recon.transaction_feature_names() RETURNS text[]
    AS 'MODULE_PATHNAME', 'calo_recon_transaction_feature_names'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.transaction_feature_names() IS
  'Names of the anomaly features, in the order of calo_recon.transaction_features.features; stored with every model';

CREATE FUNCTION calo_recon.compute_transaction_features(user_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               amount float8, vat float8, net float8, balance_change float8,
               old_balance float8, hour_of_day float8, seconds_since_previous float8,
               amount_vs_user_median float8, direction float8)
    AS 'MODULE_PATHNAME', 'calo_recon_compute_transaction_features'
    LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION calo_recon.compute_transaction_features(text[]) IS
  'The rows of calo_recon.transaction_features, of all users (NULL) or of the given users only';
REVOKE ALL ON FUNCTION calo_recon.compute_transaction_features(text[]) FROM PUBLIC;

CREATE OR REPLACE VIEW calo_recon.transaction_features AS
SELECT f.txn_id, f.user_id, f.logged_at, f.features,
       f.amount, f.vat, f.net, f.balance_change, f.old_balance,
       f.hour_of_day, f.seconds_since_previous,
       f.amount_vs_user_median, f.direction
FROM calo_recon.compute_transaction_features() f;
