-- pgTAP: the reconciliation API (signatures, privileges, catalog duties) and
-- its behaviour on a small chain.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(30);

SELECT has_function('calo_recon', 'reconcile', ARRAY['text[]'], 'reconcile(text[]) exists');
SELECT function_returns('calo_recon', 'reconcile', ARRAY['text[]'], 'setof record', 'reconcile returns a table');
SELECT volatility_is('calo_recon', 'reconcile', ARRAY['text[]'], 'volatile', 'reconcile writes: volatile');
SELECT ok(NOT has_function_privilege('public', 'calo_recon.reconcile(text[])', 'EXECUTE'),
          'reconcile is not executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public',
          'calo_recon.check_transaction(text, text, numeric, numeric, numeric, numeric, numeric)', 'EXECUTE'),
          'check_transaction is not executable by PUBLIC');
SELECT volatility_is('calo_recon', 'check_transaction',
          ARRAY['text', 'text', 'numeric', 'numeric', 'numeric', 'numeric', 'numeric'], 'stable',
          'check_transaction reads the editable currencies: stable, not immutable');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'calo_recon' AND p.prosecdef
                        AND p.oid <> 'calo_recon.reconcile(text[])'::regprocedure
                        AND p.proname IN ('check_transaction', 'chain_findings', 'chain_findings_since', 'reconcile_pending'))
          AND (SELECT prosecdef AND proconfig = ARRAY['search_path=pg_catalog, pg_temp']
               FROM pg_proc WHERE oid = 'calo_recon.reconcile(text[])'::regprocedure),
          'reconcile() is a hardened SECURITY DEFINER entry point (it writes findings for operators), the rules are not');
SELECT ok((SELECT 'calo_recon.reconciliation_findings'::regclass::oid = ANY (extconfig)
           FROM pg_extension WHERE extname = 'calo_recon'),
          'findings are kept by pg_dump');
SELECT has_view('calo_recon', v, 'view ' || v) FROM unnest(ARRAY['balance_breaks', 'precision_drift',
    'overdrafts', 'overdraft_episodes', 'discrepancies', 'user_summary']) AS v;
SELECT columns_are('calo_recon', 'balance_breaks', ARRAY['txn_id', 'user_id', 'break_kind', 'currency',
    'expected', 'actual', 'difference', 'tolerance', 'first_break', 'logged_at', 'source_file'],
    'balance_breaks columns');
SELECT col_type_is('calo_recon', 'balance_breaks', 'difference', 'numeric', 'money is numeric');
SELECT col_type_is('calo_recon', 'overdraft_episodes', 'started_at', 'timestamp with time zone', 'times are timestamptz');

INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('A1', 'tap', 'CREDIT', 'KWD', 11, 1, 0, 10, '2024-01-01'),
       ('A2', 'tap', 'DEBIT', 'KWD', 3, 0, 10.0004, 7.0004, '2024-01-02'),
       ('A3', 'tap', 'DEBIT', 'KWD', 3, 0, 7.0004, 4.0009, '2024-01-03'),
       ('A4', 'tap', 'DEBIT', 'KWD', 5, 0, 4.5, -0.5, '2024-01-04');
SELECT results_eq('SELECT users, transactions, arithmetic_breaks, chain_breaks, drift, overdrafts FROM calo_recon.reconcile(ARRAY[''tap''])',
                  $$VALUES (1::bigint, 4::bigint, 1::bigint, 1::bigint, 1::bigint, 1::bigint)$$,
                  'counts of one user: drift, arithmetic at the tolerance, chain, overdraft');
SELECT results_eq('SELECT txn_id, finding, difference, first_break FROM calo_recon.reconciliation_findings ORDER BY txn_id, finding',
                  $$VALUES ('A2', 'chain_drift', 0.0004, false), ('A3', 'arithmetic', 0.0005, true),
                           ('A4', 'chain', 0.4991, false)$$,
                  'findings with exact signed differences and the first break');
SELECT results_eq('SELECT break_kind, first_break FROM calo_recon.balance_breaks ORDER BY txn_id',
                  $$VALUES ('arithmetic', true), ('chain', false)$$, 'balance_breaks lists every break');
SELECT results_eq('SELECT started_at, ended_at, lowest_balance FROM calo_recon.overdraft_episodes',
                  $$VALUES ('2024-01-04'::timestamptz, NULL::timestamptz, -0.5)$$, 'an open overdraft episode');
SELECT is((SELECT count(*) FROM calo_recon.reconcile(ARRAY['tap']) r WHERE r.arithmetic_breaks = 1), 1::bigint,
          'reconciling again gives the same counts');
SELECT is((SELECT count(*) FROM calo_recon.reconciliation_findings), 3::bigint, 'and does not duplicate findings');
SELECT throws_ok($$SELECT * FROM calo_recon.check_transaction('TRANSFER', 'SAR', 1, 0, 1, 2)$$, '22023',
                 NULL, 'an unknown transaction type is refused');
SELECT throws_ok($$SELECT calo_recon.exact_decimal('NaN')$$, '22023', NULL, 'NaN is not a balance');

-- the insert-time check is the same walk (src/core/walk.c) as reconcile()
SELECT ok(NOT has_function_privilege('public', 'calo_recon.chain_findings(text[])', 'EXECUTE'),
          'chain_findings is not executable by PUBLIC');
SELECT volatility_is('calo_recon', 'chain_key', ARRAY['timestamp with time zone', 'text'], 'immutable',
          'chain_key is immutable (the views order by it)');
SELECT results_eq($$SELECT txn_id, finding, difference FROM calo_recon.chain_findings(ARRAY['A2', 'A3', 'A4'])
                    ORDER BY txn_id, finding$$,
                  $$SELECT txn_id, finding, difference FROM calo_recon.reconciliation_findings
                    UNION ALL VALUES ('A4', 'overdraft', NULL::numeric) ORDER BY 1, 2$$,
                  'chain_findings finds what reconcile() stored, and the overdraft');
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('b', 'tap-tie', 'DEBIT', 'SAR', 1, 0, 9, 8, '2024-01-01'),
       ('B', 'tap-tie', 'CREDIT', 'SAR', 10, 0, 0, 10, '2024-01-01'),
       ('C', 'tap-tie', 'DEBIT', 'SAR', 1, 0, 10, 9, '2024-01-01');
SELECT is_empty($$SELECT * FROM calo_recon.chain_findings(ARRAY['b', 'B', 'C'])$$,
                'a tie on logged_at is ordered bytewise: B, C, b chain without a break');
SELECT is((SELECT chain_breaks + arithmetic_breaks FROM calo_recon.reconcile(ARRAY['tap-tie'])), 0::bigint,
          'and reconcile() agrees');

SELECT * FROM finish();
ROLLBACK;
