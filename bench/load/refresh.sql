-- the scheduled job, every few seconds (the \sleep sets the period)
SELECT status FROM calo_recon.refresh('samples');
\sleep :refresh_period s
