-- what a BI dashboard asks of the views
\set pick random(1, 5)
\set user random(1, 500)
SELECT * FROM calo_recon.user_summary WHERE user_id = 'load-user-' || :user;
SELECT * FROM calo_recon.balance_breaks ORDER BY logged_at DESC, txn_id LIMIT 20;
SELECT * FROM calo_recon.overdrafts ORDER BY logged_at DESC, txn_id LIMIT 20;
SELECT count(*) FROM calo_recon.anomalies;
SELECT * FROM calo_recon.alerts ORDER BY alert_id DESC LIMIT 20;
