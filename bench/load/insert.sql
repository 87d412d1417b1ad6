-- one wallet transaction per pgbench transaction, alerts on; about one in
-- ten is an overdraft, and since old_balance is drawn at random nearly every
-- row breaks its user's chain: the alert path's worst case
\set user random(1, 500)
\set amount random(1, 400)
\set start random(0, 20000)
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('LOAD-' || nextval('public.load_txn_seq'), 'load-user-' || :user, 'DEBIT', 'LOAD', 'BENCH', 'SAR',
        :amount, 0, :start / 10.0, :start / 10.0 - :amount, clock_timestamp());
