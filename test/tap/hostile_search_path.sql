-- A hostile search_path reaches no code of the caller's choosing (issue 7
-- P5).  Operators and functions shadowing pg_catalog's, domains named like
-- built-in types with a CHECK, and views named like calo_recon's tables are
-- planted in public and pg_temp; every entry point a user may call (every
-- function of the schema, its triggers through INSERT and DELETE, every view)
-- then runs under three paths: public before pg_catalog (pg_temp implicitly
-- first for types and relations), public, pg_catalog, pg_temp (public types
-- win), and the default path (pg_temp types win).  Each planted object
-- records its name and the entry point running in hostile_hits and otherwise
-- behaves like the built-in, so that a hit never changes the control flow;
-- the assertions run after the path is back to pg_catalog first.  Casts are
-- not planted: they are found by type OID, never through the path, and only
-- a type's owner creates one (and casts to a domain are ignored).
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(108);
SET LOCAL search_path = pg_catalog, public, pg_temp;
SET LOCAL client_min_messages = warning;

-- ---------------------------------------------------------------- fixtures
CREATE TEMP TABLE setup_ingest AS SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'TAP-HSP-' || i, 'tap-hsp-' || (i % 4), 'DEBIT', 'SAR', 10 + i % 7, 0, 100, 90 - i % 7,
       timestamptz '2024-07-01 00:00+00' + i * interval '1 hour'
FROM generate_series(1, 60) i;
CREATE TEMP TABLE setup_model AS
SELECT r.users, (calo_recon.train_model('tap-hsp', 0.05, 10, 32, 7)).model_id FROM calo_recon.reconcile() r;
CREATE TEMP TABLE fixture AS
SELECT m.scaler, m.forest,
       ARRAY(SELECT g::float8 FROM generate_series(1, cardinality(calo_recon.transaction_feature_names())) g) AS x,
       calo_recon.iforest_to_bytea(m.forest) AS forest_bytes,
       calo_recon.scaler_to_json(m.scaler) AS scaler_json,
       calo_recon.iforest_to_json(m.forest) AS forest_json,
       calo_recon.read_log_file('samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz') AS log
FROM calo_recon.models m WHERE m.active;
-- the fitting aggregates' partial states, as a Citus coordinator gets them
CREATE AGGREGATE pg_temp.tap_state_of(float8[]) (
    SFUNC = calo_recon.scaler_state_add, STYPE = calo_recon.scaler_state);
CREATE AGGREGATE pg_temp.tap_sample_of(float8[], int, int, bigint) (
    SFUNC = calo_recon.iforest_sample_add, STYPE = calo_recon.iforest_sample);
CREATE TEMP TABLE fit_states AS
SELECT pg_temp.tap_state_of(t.features) AS scaler_state, pg_temp.tap_sample_of(t.features, 10, 32, 1) AS sample
FROM calo_recon.transaction_features t;
CREATE ROLE calo_tap_hostile_grantee;

-- ------------------------------------------------------------------ plants
CREATE TABLE public.hostile_hits (entry text, plant text);
CREATE FUNCTION public.hostile_hit(plant text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.hostile_hits
    VALUES (coalesce(nullif(current_setting('hostile.entry', true), ''), '(setup)'), plant);
    RETURN true;
END;
$$;

-- operators over the built-in types a query could compare, concatenate or
-- compute with: each calls the built-in function after recording the hit
DO $$
DECLARE
    o record;
    n int := 0;
    wrapper text;
BEGIN
    FOR o IN
        SELECT op.oprname, op.oprleft, op.oprright, op.oprresult,
               format('%I.%I', pn.nspname, p.proname) AS code
        FROM pg_operator op
        JOIN pg_proc p ON p.oid = op.oprcode
        JOIN pg_namespace pn ON pn.oid = p.pronamespace
        WHERE op.oprnamespace = 'pg_catalog'::regnamespace
          AND op.oprname IN ('=', '<>', '<', '>', '<=', '>=', '||', '+', '-', '*', '/', '%',
                             '~~', '~', '@>', '<@', '?', '->', '->>', '#>', '#>>', '&&')
          AND op.oprright IN ('text'::regtype, 'numeric'::regtype, 'jsonb'::regtype, 'int2'::regtype,
                              'int4'::regtype, 'int8'::regtype, 'float8'::regtype, 'bool'::regtype,
                              'timestamptz'::regtype, 'interval'::regtype, 'bytea'::regtype,
                              'name'::regtype, 'oid'::regtype, 'tid'::regtype, 'text[]'::regtype,
                              '"char"'::regtype)
          AND (op.oprleft = 0 OR op.oprleft IN (
                              'text'::regtype, 'numeric'::regtype, 'jsonb'::regtype, 'int2'::regtype,
                              'int4'::regtype, 'int8'::regtype, 'float8'::regtype, 'bool'::regtype,
                              'timestamptz'::regtype, 'interval'::regtype, 'bytea'::regtype,
                              'name'::regtype, 'oid'::regtype, 'tid'::regtype, 'text[]'::regtype,
                              '"char"'::regtype))
    LOOP
        n := n + 1;
        wrapper := 'hostile_op_' || n;
        IF o.oprleft = 0 THEN
            EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql
                            SET search_path = pg_catalog, pg_temp AS %L',
                           wrapper, o.oprright::regtype, o.oprresult::regtype,
                           format('BEGIN PERFORM public.hostile_hit(%L); RETURN %s($1); END',
                                  'public.' || o.oprname || '(' || o.oprright::regtype || ')', o.code));
            EXECUTE format('CREATE OPERATOR public.%s (RIGHTARG = %s, FUNCTION = public.%I)',
                           o.oprname, o.oprright::regtype, wrapper);
        ELSE
            EXECUTE format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE plpgsql
                            SET search_path = pg_catalog, pg_temp AS %L',
                           wrapper, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
                           format('BEGIN PERFORM public.hostile_hit(%L); RETURN %s($1, $2); END',
                                  'public.' || o.oprname || '(' || o.oprleft::regtype || ', ' || o.oprright::regtype || ')',
                                  o.code));
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                           o.oprname, o.oprleft::regtype, o.oprright::regtype, wrapper);
        END IF;
    END LOOP;
END;
$$;

-- functions a query could call unqualified: every plain pg_catalog function
-- of these names over built-in non-polymorphic types, same signature
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.proname, pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity,
               pg_catalog.pg_get_function_result(p.oid) AS result, p.proretset,
               (SELECT string_agg('$' || i, ', ') FROM generate_series(1, p.pronargs) i) AS call_args
        FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
          AND p.proname IN ('abs', 'btrim', 'lower', 'upper', 'length', 'octet_length', 'char_length',
                            'substr', 'substring', 'replace', 'position', 'strpos', 'left', 'right',
                            'concat', 'concat_ws', 'format', 'quote_literal', 'quote_ident', 'md5',
                            'sha256', 'encode', 'decode', 'now', 'clock_timestamp', 'statement_timestamp',
                            'date_part', 'date_trunc', 'round', 'trunc', 'sign', 'floor', 'ceil',
                            'random', 'to_jsonb', 'to_json', 'jsonb_build_object', 'jsonb_typeof',
                            'jsonb_object_keys', 'jsonb_array_elements', 'jsonb_extract_path_text',
                            'jsonb_each_text', 'array_length', 'cardinality', 'unnest', 'generate_series',
                            'pg_advisory_xact_lock', 'pg_try_advisory_xact_lock', 'pg_advisory_lock',
                            'pg_notify', 'current_setting', 'set_config', 'nextval', 'to_regclass',
                            'isfinite', 'numeric', 'text', 'int4', 'int8', 'float8', 'jsonb_in', 'textin',
                            'pg_backend_pid', 'txid_current', 'pg_current_xact_id', 'regexp_replace',
                            'regexp_match', 'split_part', 'string_to_array', 'array_to_string', 'to_char',
                            'convert_from', 'convert_to', 'pg_read_file', 'pg_stat_file', 'overlay',
                            'jsonb_set', 'jsonb_strip_nulls', 'row_to_json', 'hashtext', 'ascii', 'chr')
          AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t(oid)
                          JOIN pg_type ty ON ty.oid = t.oid
                          WHERE ty.typtype = 'p' OR ty.typname IN ('cstring', 'internal'))
          AND (SELECT ty.typtype <> 'p' OR ty.typname IN ('record', 'void') FROM pg_type ty WHERE ty.oid = p.prorettype)
          AND p.provariadic = 0
    LOOP
        BEGIN
            EXECUTE format($fn$CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql
                             SET search_path = pg_catalog, pg_temp AS $body$
                             BEGIN
                                 PERFORM public.hostile_hit(%L);
                                 %s
                             END $body$$fn$,
                           f.proname, f.args, f.result,
                           'public.' || f.proname || '(' || f.identity || ')',
                           CASE WHEN f.proretset
                                THEN format('RETURN QUERY SELECT * FROM pg_catalog.%I(%s);', f.proname, coalesce(f.call_args, ''))
                                WHEN f.result = 'void'
                                THEN format('PERFORM pg_catalog.%I(%s);', f.proname, coalesce(f.call_args, ''))
                                ELSE format('RETURN pg_catalog.%I(%s);', f.proname, coalesce(f.call_args, '')) END);
        EXCEPTION WHEN others THEN
            NULL;  -- a signature plpgsql cannot take or return: not planted
        END;
    END LOOP;
END;
$do$;
-- overloads more specific than a polymorphic built-in win even when
-- pg_catalog comes first in the path
CREATE FUNCTION public.hostile_count_text(int8, text) RETURNS int8 LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM public.hostile_hit('public.count(text)'); RETURN $1 + 1; END $$;
CREATE AGGREGATE public.count(text) (SFUNC = public.hostile_count_text, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.hostile_array_agg_text(text[], text) RETURNS text[] LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM public.hostile_hit('public.array_agg(text)'); RETURN pg_catalog.array_append($1, $2); END $$;
CREATE AGGREGATE public.array_agg(text) (SFUNC = public.hostile_array_agg_text, STYPE = text[]);
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM public.hostile_hit('public.unnest(text[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION public.cardinality(text[]) RETURNS int LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM public.hostile_hit('public.cardinality(text[])'); RETURN pg_catalog.cardinality($1); END $$;

-- types: a domain named like each built-in type whose CHECK records the hit,
-- in public and in pg_temp (searched first for types unless listed later)
DO $$
DECLARE
    t text;
    s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['public', 'pg_temp'] LOOP
        FOREACH t IN ARRAY ARRAY['text', 'jsonb', 'json', 'int2', 'int4', 'int8', 'float8', 'float4',
                                 'bool', 'timestamptz', 'timestamp', 'date', 'bytea', 'name', 'oid',
                                 'regclass', 'regtype', 'regproc', 'regprocedure', 'regnamespace',
                                 'tid', 'xid', 'interval', 'varchar', 'bpchar', 'numeric'] LOOP
            EXECUTE format('CREATE DOMAIN %I.%I AS pg_catalog.%I CHECK (public.hostile_hit(%L))',
                           s, t, t, s || '.' || t);
        END LOOP;
    END LOOP;
END;
$$;

-- relations named like calo_recon's: reading one records the hit
DO $$
DECLARE
    r record;
    s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['public', 'pg_temp'] LOOP
        FOR r IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind IN ('r', 'v', 'p')
        LOOP
            EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM calo_recon.%I WHERE public.hostile_hit(%L)',
                           s, r.relname, r.relname, s || '.' || r.relname);
        END LOOP;
    END LOOP;
END;
$$;

-- functions named like calo_recon's, in public: a call that strays there
-- records the hit and then fails loudly
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.proname, pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity,
               pg_catalog.pg_get_function_result(p.oid) AS result
        FROM pg_proc p
        WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind = 'f'
          AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype, 'cstring'::regtype)
          AND NOT p.proargtypes::oid[] && ARRAY['internal'::regtype, 'cstring'::regtype]::oid[]
    LOOP
        EXECUTE format($fn$CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql
                         SET search_path = pg_catalog, pg_temp AS $body$
                         BEGIN
                             PERFORM public.hostile_hit(%L);
                             RAISE EXCEPTION 'planted function ran' USING ERRCODE = 'HS001';
                         END $body$$fn$,
                       f.proname, f.args, f.result, 'public.' || f.proname || '(' || f.identity || ')');
    END LOOP;
END;
$do$;

-- a canary: the plants do fire under the hostile paths
CREATE TEMP TABLE entry_errors (entry text, sqlstate text, message text);
CREATE FUNCTION pg_temp.run_entry(phase text, entry text, path text, statement text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.set_config('hostile.entry', phase || ':' || entry, true);
    PERFORM pg_catalog.set_config('search_path', path, true);
    EXECUTE statement;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM pg_catalog.set_config('hostile.entry', '', true);
EXCEPTION WHEN others THEN
    PERFORM pg_catalog.set_config('hostile.entry', '', true);
    INSERT INTO pg_temp.entry_errors VALUES (phase || ':' || entry, SQLSTATE, SQLERRM);
END;
$$;

-- ----------------------------------------------------------- entry points
-- The statements are what a careful caller writes: every name qualified, so
-- any hit comes from inside calo_recon.
CREATE TEMP TABLE entry_points (entry text PRIMARY KEY, statement text NOT NULL);
INSERT INTO entry_points VALUES
  ('canary', $$SELECT 'a'::text = 'b', '1'::jsonb$$),
  ('parse_log', $$SELECT * FROM calo_recon.parse_log((SELECT f.log FROM pg_temp.fixture f))$$),
  ('parse_log_kinds', $$SELECT * FROM calo_recon.parse_log_kinds()$$),
  ('ingest_log', $$SELECT * FROM calo_recon.ingest_log((SELECT f.log FROM pg_temp.fixture f), 'hostile-source')$$),
  ('ingest_log_unreconciled', $$SELECT * FROM calo_recon.ingest_log_unreconciled((SELECT f.log FROM pg_temp.fixture f), 'hostile-unreconciled')$$),
  ('check_source_name', $$SELECT calo_recon.check_source_name('hostile-source')$$),
  ('read_log_file', $$SELECT calo_recon.read_log_file('samples/answer-key.json')$$),
  ('ingest_file folder', $$SELECT * FROM calo_recon.ingest_file('samples')$$),
  ('ingest_file quarantine', $$SELECT * FROM calo_recon.ingest_file('bad/walk')$$),
  ('ingest_file named', $$SELECT * FROM calo_recon.ingest_file('bad/walk/b_second.log')$$),
  ('ingest_file_unreconciled', $$SELECT * FROM calo_recon.ingest_file_unreconciled('bad/walk/a_first.gz')$$),
  ('reconcile_pending', $$SELECT * FROM calo_recon.reconcile_pending()$$),
  ('drop_stale_scores', $$SELECT calo_recon.drop_stale_scores()$$),
  ('model_shape_agrees', $$SELECT calo_recon.model_shape_agrees(m.features, m.scaler, m.forest) FROM calo_recon.models m$$),
  -- the ingest's bulk writes: a log's events under a name of each phase's
  -- own; stored rows again, which the write leaves out as taken
  ('parse_and_store_log', $$SELECT pg_catalog.count(*) FROM calo_recon.parse_and_store_log((SELECT f.log FROM pg_temp.fixture f),
                                                                                        pg_catalog.current_setting('hostile.entry'))$$),
  ('store_new_transactions', $$SELECT pg_catalog.count(*) FROM calo_recon.store_new_transactions(ARRAY(SELECT t FROM calo_recon.transactions t
                                                                                                     ORDER BY t.txn_id LIMIT 2))$$),
  ('reconcile()', $$SELECT * FROM calo_recon.reconcile()$$),
  ('reconcile(ARRAY)', $$SELECT * FROM calo_recon.reconcile(ARRAY['tap-hsp-1', 'tap-hsp-2'])$$),
  ('check_transaction', $$SELECT * FROM calo_recon.check_transaction('DEBIT', 'SAR', 10, 0, 100, 90, 95)$$),
  ('check_transaction unknown currency', $$SELECT * FROM calo_recon.check_transaction('CREDIT', 'ZZZ', 10, 0, 100, 110, NULL)$$),
  ('value rules', $$SELECT calo_recon.is_currency_code('SAR'), calo_recon.is_transaction_type('DEBIT'), calo_recon.is_finite_money(1.5)$$),
  ('exact_decimal', $$SELECT calo_recon.exact_decimal(1.50), calo_recon.exact_decimal(2.25, true)$$),
  ('chain_findings', $$SELECT * FROM calo_recon.chain_findings(ARRAY['TAP-HSP-1', 'TAP-HSP-2'])$$),
  ('alert_check_deferred', $$SELECT calo_recon.alert_check_deferred()$$),
  ('chain_findings_since', $$SELECT * FROM calo_recon.chain_findings_since(ARRAY['tap-hsp-1'], ARRAY['2024-01-01 00:00+00'::pg_catalog.timestamptz], ARRAY['TAP-HSP-1'])$$),
  ('chain rules', $$SELECT calo_recon.chain_key('2024-01-01 00:00+00', 'x'), calo_recon.tolerance(3), calo_recon.within_tolerance(0.004, 2), calo_recon.wallet_gap(1, 2, 3, 0),
                          calo_recon.tolerance(NULL), calo_recon.is_credit(NULL, 1, 2), calo_recon.is_overdraft(-1),
                          calo_recon.finding_rank('chain'), calo_recon.is_break('chain'), calo_recon.round_money(1.005, 2),
                          calo_recon.round_money(1.5, NULL)$$),
  ('scaler functions', $$SELECT calo_recon.scaler_transform(f.scaler, f.x), calo_recon.scaler_to_json(f.scaler),
                               calo_recon.scaler_from_json(f.scaler_json), calo_recon.scaler_info(f.scaler),
                               f.scaler::pg_catalog.text, f.scaler::pg_catalog.text::calo_recon.scaler
                        FROM pg_temp.fixture f$$),
  ('scaler_fit', $$SELECT calo_recon.scaler_fit(t.features) FROM calo_recon.transaction_features t$$),
  ('iforest functions', $$SELECT calo_recon.iforest_score(f.forest, f.x), calo_recon.iforest_explain(f.forest, f.x),
                                calo_recon.iforest_info(f.forest), calo_recon.iforest_to_json(f.forest),
                                calo_recon.iforest_from_json(f.forest_json), calo_recon.iforest_from_bytea(f.forest_bytes),
                                calo_recon.iforest_to_bytea(f.forest), calo_recon.iforest_label(0.7, 0.6),
                                f.forest::pg_catalog.text::calo_recon.iforest
                         FROM pg_temp.fixture f$$),
  ('iforest_fit', $$SELECT calo_recon.iforest_fit(t.features), calo_recon.iforest_fit(t.features, 10, 32, 1),
                          calo_recon.iforest_fit(t.features, 10, 32, 1, 4)
                   FROM calo_recon.transaction_features t$$),
  ('fit states', $$SELECT calo_recon.scaler_state_fit(calo_recon.scaler_state_combine(NULL, f.scaler_state)),
                         calo_recon.scaler_state_info(f.scaler_state),
                         f.scaler_state::pg_catalog.text::calo_recon.scaler_state,
                         calo_recon.iforest_sample_fit(calo_recon.iforest_sample_combine(f.sample, f.sample)),
                         calo_recon.iforest_sample_info(f.sample),
                         f.sample::pg_catalog.text::calo_recon.iforest_sample
                  FROM pg_temp.fit_states f$$),
  ('transaction_feature_names', $$SELECT calo_recon.transaction_feature_names()$$),
  ('compute_transaction_features', $$SELECT count(*) FROM calo_recon.compute_transaction_features()
                                    UNION ALL
                                    SELECT count(*) FROM calo_recon.compute_transaction_features(ARRAY['tap-hsp-1'])$$),
  ('fit_and_score_model', $$SELECT (calo_recon.fit_and_score_model(pg_catalog.nextval('calo_recon.models_model_id_seq'),
                                                                  0.05, 10, 32, 5, NULL, NULL, NULL)).threshold$$),
  ('model_scores', $$SELECT count(*) FROM calo_recon.models m,
                         calo_recon.model_scores(m.model_id, ARRAY['tap-hsp-1', 'tap-hsp-2'])$$),
  ('feature_value', $$SELECT calo_recon.feature_value(1e200), calo_recon.feature_value('NaN'), calo_recon.feature_value(NULL)$$),
  ('record_feedback', $$SELECT calo_recon.record_feedback('TAP-HSP-1', 'confirmed', 'hostile path')$$),
  ('train_model', $$SELECT calo_recon.train_model('tap-hsp-hostile', 0.05, 10, 32, 11)$$),
  ('train_model per currency and window', $$SELECT calo_recon.train_model('tap-hsp-sar', 0.05, 10, 32, 12, 'SAR',
                                                                   '2024-07-01 00:00+00', '2024-07-03 00:00+00')$$),
  ('model_scope', $$SELECT count(*) FROM calo_recon.model_scope('SAR')$$),
  ('retrain_due_models', $e$DO $d$ BEGIN
       UPDATE calo_recon.models m SET trained_at = m.trained_at OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval WHERE m.active;
       PERFORM pg_catalog.set_config('calo_recon.retrain_after', '3600', true);
       PERFORM calo_recon.retrain_due_models();
       PERFORM pg_catalog.set_config('calo_recon.retrain_after', '0', true);
     END $d$$e$),
  ('set_amount_threshold', $$SELECT calo_recon.set_amount_threshold('SAR', 1000)$$),
  ('INSERT amount_thresholds', $$INSERT INTO calo_recon.amount_thresholds (currency, threshold) VALUES ('EUR', 1000)
                                 ON CONFLICT (currency) DO UPDATE SET threshold = excluded.threshold$$),
  ('UPDATE amount_thresholds', $$UPDATE calo_recon.amount_thresholds a SET threshold = 1000 WHERE a.currency OPERATOR(pg_catalog.=) 'SAR'$$),
  ('score_transactions', $$SELECT calo_recon.score_transactions(), calo_recon.score_transactions(false)$$),
  ('export_reports', $$SELECT * FROM calo_recon.export_reports('tap_hostile_search_path', '2000-01-01 00:00+00', '2100-01-01 00:00+00')$$),
  ('export_workbook', $$SELECT calo_recon.export_workbook('tap_hostile_search_path.xlsx', '2000-01-01 00:00+00', '2100-01-01 00:00+00')$$),
  ('export_dashboard', $$SELECT calo_recon.export_dashboard('tap_hostile_search_path.html', '2000-01-01 00:00+00', '2100-01-01 00:00+00')$$),
  ('refresh', $$SELECT * FROM calo_recon.refresh('samples')$$),
  ('refresh_start, refresh_finish', $$SELECT (calo_recon.refresh_finish((calo_recon.refresh_start('samples')).run_id)).status$$),
  ('check_last_refresh', $$SELECT * FROM calo_recon.check_last_refresh()$$),
  ('refresh_work', $$WITH r AS (INSERT INTO calo_recon.runs (status, folder) VALUES ('running', 'samples') RETURNING run_id)
                     SELECT (calo_recon.refresh_work(r.run_id)).status FROM r$$),
  ('refresh_skipped_reason', $$SELECT calo_recon.refresh_skipped_reason()$$),
  ('locks', $$SELECT calo_recon.lock_writer(), calo_recon.try_lock_writer(), calo_recon.writer_lock_holder(),
                     calo_recon.lock_user_chains(ARRAY['tap-hsp-1', 'tap-hsp-2'])$$),
  ('alert_payload', $$SELECT calo_recon.alert_payload(a) FROM calo_recon.alerts a$$),
  ('alert_group', $$SELECT calo_recon.alert_group(a) FROM calo_recon.alerts a$$),
  ('check_health', $e$DO $d$ BEGIN PERFORM calo_recon.check_health('1 hour'::pg_catalog.interval);
                        EXCEPTION WHEN SQLSTATE 'RH001' THEN NULL; END $d$$e$),
  ('health_figures', $$SELECT * FROM calo_recon.health_figures()$$),
  ('purge', $$SELECT * FROM calo_recon.purge('100 years'::pg_catalog.interval)$$),
  ('raise_alerts', $$SELECT * FROM calo_recon.raise_alerts()$$),
  ('ops_settings', $$SELECT * FROM calo_recon.ops_settings()$$),
  ('raise_system_alert', $$SELECT calo_recon.raise_system_alert('stale_data', '{"hostile": true}'::pg_catalog.jsonb)$$),
  ('raise_run_alert', $$SELECT calo_recon.raise_run_alert(r) FROM calo_recon.runs r
                        WHERE r.status OPERATOR(pg_catalog.=) 'failed' ORDER BY r.run_id DESC LIMIT 1$$),
  ('refresh_skipped', $$WITH r AS (INSERT INTO calo_recon.runs (status, folder) VALUES ('running', 'samples') RETURNING run_id)
                        SELECT (calo_recon.refresh_skipped(r.run_id)).status FROM r$$),
  ('acknowledge_alert', $$SELECT * FROM calo_recon.acknowledge_alert((SELECT pg_catalog.min(a.alert_id) FROM calo_recon.alerts a
                                                                     WHERE a.status OPERATOR(pg_catalog.=) 'open'), 'hostile', true)$$),
  ('resolve_alert', $$SELECT * FROM calo_recon.resolve_alert((SELECT pg_catalog.min(a.alert_id) FROM calo_recon.alerts a
                                                             WHERE a.status OPERATOR(pg_catalog.<>) 'resolved'), 'hostile', true)$$),
  ('alert_refuse', $e$DO $d$ BEGIN PERFORM calo_recon.alert_refuse(0, 'acknowledge');
                        EXCEPTION WHEN no_data_found THEN NULL; END $d$$e$),
  ('UPDATE alerts (lifecycle trigger)',
   $$UPDATE calo_recon.alerts a SET acknowledge_note = 'hostile'
     WHERE a.alert_id OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(o.alert_id) FROM calo_recon.alerts o
                                              WHERE o.status OPERATOR(pg_catalog.=) 'open')$$),
  ('alerts_notice', $$SELECT calo_recon.alerts_notice(ARRAY[1, 2]::pg_catalog.int8[], ARRAY['chain', 'overdraft'])$$),
  ('grant_role', $$SELECT * FROM calo_recon.grant_role('calo_tap_hostile_grantee', 'analyst')$$),
  ('revoke_role', $$SELECT * FROM calo_recon.grant_role('calo_tap_hostile_grantee', 'monitor')
                    UNION ALL SELECT * FROM calo_recon.revoke_role('calo_tap_hostile_grantee', 'monitor')$$),
  ('reapply_grants', $$SELECT * FROM calo_recon.reapply_grants()$$),
  ('harden_entry_points', $$SELECT * FROM calo_recon.harden_entry_points()$$),
  ('revoke_all', $$SELECT * FROM calo_recon.revoke_all('calo_tap_hostile_grantee')$$),
  ('INSERT transactions (alerts, queue)',
   $$INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
     SELECT pg_catalog.concat('TAP-HSP-NEW-', pg_catalog.current_setting('hostile.entry'), '-', g.i),
            'tap-hsp-1', 'DEBIT', 'SAR', 5000, 0, 1, -4999, '2025-01-01 00:00+00'
     FROM pg_catalog.generate_series(1, 2) AS g(i)$$),
  ('UPDATE transactions (queue)', $$UPDATE calo_recon.transactions t SET amount = t.amount WHERE t.txn_id OPERATOR(pg_catalog.=) 'TAP-HSP-3'$$),
  ('DELETE transactions (queue)', $$DELETE FROM calo_recon.transactions t WHERE t.txn_id OPERATOR(pg_catalog.=) 'TAP-HSP-4'$$),
  -- rolled back: the entries after it read the transactions
  ('TRUNCATE transactions (scores)',
   $e$DO $do$ BEGIN TRUNCATE calo_recon.transactions ;
                    RAISE EXCEPTION 'undone' USING ERRCODE = 'HU001';
     EXCEPTION WHEN SQLSTATE 'HU001' THEN NULL; END $do$$e$),
  -- the report totals (views read them for the queued users)
  ('user_figures', $$SELECT * FROM calo_recon.user_figures(ARRAY['tap-hsp-1'], '2000-01-01', NULL)$$),
  ('user_day_figures', $$SELECT * FROM calo_recon.user_day_figures(NULL)$$),
  ('user_overdraft_episodes', $$SELECT * FROM calo_recon.user_overdraft_episodes(ARRAY['tap-hsp-1'])$$),
  ('reconcile (report totals of some users)', $$SELECT * FROM calo_recon.reconcile(ARRAY['tap-hsp-1', 'tap-hsp-2'])$$),
  ('user_summary_in', $$SELECT * FROM calo_recon.user_summary_in('2000-01-01', NULL)$$),
  ('INSERT currencies', $$INSERT INTO calo_recon.currencies (code, minor_unit) VALUES ('JPY', 0)
                          ON CONFLICT (code) DO UPDATE SET minor_unit = excluded.minor_unit$$),
  -- a currency's minor unit queues its users (track_currency_changes)
  ('UPDATE and DELETE currencies (queue)',
   $e$DO $do$ BEGIN
       UPDATE calo_recon.currencies c SET minor_unit = 3 WHERE c.code OPERATOR(pg_catalog.=) 'SAR';
       UPDATE calo_recon.currencies c SET minor_unit = 2 WHERE c.code OPERATOR(pg_catalog.=) 'SAR';
       DELETE FROM calo_recon.currencies c WHERE c.code OPERATOR(pg_catalog.=) 'ZZX';
     END $do$$e$),
  -- TRUNCATE queues the users and resolves the alerts
  -- (track_truncated_transactions), undone at once
  ('TRUNCATE transactions (queue, undone)',
   $e$DO $do$ BEGIN
       BEGIN
           TRUNCATE calo_recon.transactions;
           RAISE EXCEPTION 'undo the truncate' USING ERRCODE = 'P0001';
       EXCEPTION WHEN raise_exception THEN NULL;
       END;
     END $do$$e$),
  -- the alert sync of reconcile() and the insert-time check
  ('alert sync internals', $$SELECT calo_recon.alert_backfill_before(), calo_recon.break_alert_detail(1, 2, 1, 0.005, 'SAR'),
                                    calo_recon.chain_snapshot_behind(ARRAY['tap-hsp-1'])$$),
  ('raise_transaction_alerts', $$SELECT calo_recon.notify_alerts(r.alert_ids, r.raised_kinds)
                                 FROM calo_recon.raise_transaction_alerts(ARRAY['TAP-HSP-1'], ARRAY['tap-hsp-1'], ARRAY['chain'],
                                                                          ARRAY['{}'::pg_catalog.jsonb], ARRAY[1]) r$$),
  ('DELETE models', $$DELETE FROM calo_recon.models m WHERE NOT m.active$$),
  -- daily_summary's stored anomaly counts, and the notes of their inputs
  ('store_anomaly_day_totals', $$SELECT calo_recon.store_anomaly_day_totals()$$),
  ('DELETE anomaly_feedback (note)', $$DELETE FROM calo_recon.anomaly_feedback f WHERE f.txn_id OPERATOR(pg_catalog.=) 'none'$$),
  ('DELETE transaction_scores (note)', $$DELETE FROM calo_recon.transaction_scores s WHERE s.txn_id OPERATOR(pg_catalog.=) 'none'$$),
  -- the Citus entry points on one node: the layout, and the refusals
  ('citus_layout', $$SELECT * FROM calo_recon.citus_layout()$$),
  ('distribute (no Citus)', $e$DO $do$ BEGIN PERFORM calo_recon.distribute();
                                EXCEPTION WHEN feature_not_supported THEN NULL; END $do$$e$),
  ('reconcile_placement (not a shard)',
   $e$DO $do$ BEGIN PERFORM calo_recon.reconcile_placement('calo_recon.shard_anchors'::pg_catalog.regclass, NULL);
     EXCEPTION WHEN invalid_parameter_value THEN NULL; END $do$$e$),
  ('transaction_features_placement (not a shard)',
   $e$DO $do$ BEGIN PERFORM calo_recon.transaction_features_placement('calo_recon.shard_anchors'::pg_catalog.regclass, NULL, false);
     EXCEPTION WHEN invalid_parameter_value THEN NULL; END $do$$e$),
  ('chain_findings_since_placement (not a shard)',
   $e$DO $do$ BEGIN PERFORM calo_recon.chain_findings_since_placement('calo_recon.shard_anchors'::pg_catalog.regclass,
                                                                       ARRAY['tap-hsp-1'], ARRAY[pg_catalog.now()], ARRAY['x']);
     EXCEPTION WHEN invalid_parameter_value THEN NULL; END $do$$e$),
  ('score_placement (not a shard)',
   $e$DO $do$ BEGIN PERFORM calo_recon.score_placement('calo_recon.shard_anchors'::pg_catalog.regclass, NULL, true, '{SAR}',
                                                        ARRAY[m.model_id], ARRAY[m.model_id], ARRAY[m.scaler],
                                                        ARRAY[m.forest], ARRAY[m.threshold])
                   FROM calo_recon.models m WHERE m.active;
     EXCEPTION WHEN invalid_parameter_value THEN NULL; END $do$$e$),
  ('is_distributed', $$SELECT calo_recon.is_distributed()$$),
  ('grant_on_workers (one node: nothing)', $$SELECT calo_recon.grant_on_workers(ARRAY['GRANT EXECUTE ON FUNCTION calo_recon.is_distributed() TO calo_tap_hostile_grantee'])$$),
  ('alert_distributed', $$SELECT calo_recon.alert_distributed(ARRAY(SELECT t FROM calo_recon.transactions t
                                                                    ORDER BY t.txn_id LIMIT 2))$$),
  ('INSERT alert_inbox (the alert check on a cluster)',
   $$INSERT INTO calo_recon.alert_inbox SELECT t.* FROM calo_recon.transactions t ORDER BY t.txn_id LIMIT 2$$),
  -- a bare INSERT queued as on a cluster (the queue's trigger enabled as
  -- distribute() does), then checked as raise_alerts() does
  ('alert_queued (a bare INSERT queued as on a cluster)',
   $e$DO $do$ BEGIN
       ALTER TABLE calo_recon.transactions ENABLE TRIGGER transactions_alert_queue;
       DELETE FROM calo_recon.transactions t WHERE t.txn_id OPERATOR(pg_catalog.=) 'TAP-HSP-QUEUED';
       INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
       VALUES ('TAP-HSP-QUEUED', 'tap-hsp-1', 'DEBIT', 'SAR', 2000, 0, 100, -1900, '2024-07-09 00:00+00');
       ALTER TABLE calo_recon.transactions DISABLE TRIGGER transactions_alert_queue;
       PERFORM calo_recon.alert_queued();
     END $do$$e$);
-- every view of the schema
INSERT INTO entry_points
SELECT 'view ' || c.relname, format('SELECT * FROM calo_recon.%I', c.relname)
FROM pg_class c WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind = 'v';

SELECT pg_temp.run_entry(p.phase, e.entry, p.path, e.statement)
FROM (VALUES (1, 'public first', 'public, pg_catalog'),
             (2, 'public types', 'public, pg_catalog, pg_temp'),
             (3, 'default path', '"$user", public')) AS p(ord, phase, path)
CROSS JOIN entry_points e
ORDER BY p.ord, e.entry = 'canary' DESC, e.entry = 'check_last_refresh', e.entry;
RESET search_path;
SET LOCAL search_path = pg_catalog, public, pg_temp;

CREATE TEMP TABLE findings AS
SELECT pg_catalog.split_part(h.entry, ':', 2) AS entry, 'ran ' || h.plant || ' (' || pg_catalog.split_part(h.entry, ':', 1) || ')' AS finding
FROM public.hostile_hits h WHERE h.entry <> '(setup)'
UNION
SELECT pg_catalog.split_part(e.entry, ':', 2), e.sqlstate || ' ' || e.message || ' (' || pg_catalog.split_part(e.entry, ':', 1) || ')'
FROM pg_temp.entry_errors e;

-- the plants are in place (a plant that failed to be created would make
-- this test weaker silently) and they fire: the canary hits public's "="
-- and each phase's jsonb
SELECT ok((SELECT pg_catalog.count(*) >= 150 FROM pg_operator WHERE oprnamespace = 'public'::regnamespace)
          AND (SELECT pg_catalog.count(*) >= 150 FROM pg_proc
               WHERE pronamespace = 'public'::regnamespace AND prosrc LIKE '%hostile_hit%')
          AND (SELECT pg_catalog.count(*) = 52 FROM pg_type
               WHERE typtype = 'd' AND typnamespace IN ('public'::regnamespace, pg_my_temp_schema()))
          AND (SELECT pg_catalog.count(*) FROM pg_class
               WHERE relkind = 'v' AND relnamespace IN ('public'::regnamespace, pg_my_temp_schema())
                 AND pg_get_viewdef(oid) LIKE '%hostile_hit%')
              = 2 * (SELECT pg_catalog.count(*) FROM pg_class
                     WHERE relnamespace = 'calo_recon'::regnamespace AND relkind IN ('r', 'v', 'p')),
          'plants: operators, functions, domains and views in place');
SELECT ok((SELECT pg_catalog.count(DISTINCT f.finding) >= 3 FROM findings f WHERE f.entry = 'canary'
             AND f.finding LIKE 'ran %'),
          'canary: the planted "=" and jsonb domains run under the hostile paths');
SELECT is((SELECT pg_catalog.count(*)::int FROM pg_temp.entry_errors WHERE entry LIKE '%:canary'), 0,
          'canary: the canary itself runs');

-- every other entry point: no planted object ran, no error
SELECT is((SELECT string_agg(DISTINCT f.finding, '; ' ORDER BY f.finding) FROM findings f WHERE f.entry = e.entry),
          NULL, e.entry || ': no planted object ran')
FROM entry_points e WHERE e.entry <> 'canary' AND e.entry NOT LIKE 'view %'
ORDER BY e.entry;
SELECT is((SELECT string_agg(DISTINCT f.finding, '; ' ORDER BY f.finding) FROM findings f WHERE f.entry LIKE 'view %'),
          NULL, 'every view: no planted object ran');

-- every function of the schema a user may call was run above (by name)
SELECT is_empty($$
    SELECT DISTINCT p.proname::text FROM pg_proc p
    WHERE p.pronamespace = 'calo_recon'::regnamespace
      AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype)
      AND p.prokind <> 'p'  -- procedures COMMIT, so not here: test/specs/refresh_job_search_path.spec
      AND NOT 'internal'::regtype = ANY (p.proargtypes::regtype[])
      AND p.proname NOT IN ('scaler_in', 'scaler_out', 'scaler_send', 'scaler_recv',
                            'iforest_in', 'iforest_out', 'iforest_send', 'iforest_recv',
                            'scaler_state_in', 'scaler_state_out', 'scaler_state_send', 'scaler_state_recv',
                            'iforest_sample_in', 'iforest_sample_out', 'iforest_sample_send', 'iforest_sample_recv',
                            -- aggregate transitions (revoked from PUBLIC), run by scaler_fit and iforest_fit above
                            'scaler_state_add', 'iforest_sample_add')
      AND NOT EXISTS (SELECT 1 FROM pg_temp.entry_points e
                      WHERE e.statement LIKE '%calo_recon.' || p.proname || '(%')
    EXCEPT SELECT 'none' $$,
  'every user-callable function of the schema is an entry point above');

-- and every trigger of the schema fires under one of them
SELECT is_empty($$
    SELECT tg.tgname::text FROM pg_trigger tg
    JOIN pg_class c ON c.oid = tg.tgrelid
    WHERE c.relnamespace = 'calo_recon'::regnamespace AND NOT tg.tgisinternal
      AND NOT EXISTS (SELECT 1 FROM pg_temp.entry_points e
                      WHERE (tg.tgtype & 4 <> 0 AND e.statement LIKE '%INSERT INTO calo_recon.' || c.relname || ' %')
                         OR (tg.tgtype & 8 <> 0 AND e.statement LIKE '%DELETE FROM calo_recon.' || c.relname || ' %')
                         OR (tg.tgtype & 16 <> 0 AND e.statement LIKE '%UPDATE calo_recon.' || c.relname || ' %')
                         OR (tg.tgtype & 32 <> 0 AND (e.statement LIKE '%TRUNCATE calo_recon.' || c.relname || ';%'
                                                   OR e.statement LIKE '%TRUNCATE calo_recon.' || c.relname || ' %'))) $$,
  'every trigger of the schema fires under an entry point above');

SELECT * FROM finish();
ROLLBACK;
