-- calo_recon.parse_log works on UTF-8 text only: in a database of another
-- encoding it refuses with SQLSTATE 0A000 instead of failing inside jsonb.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
DROP DATABASE IF EXISTS calo_recon_latin1;
RESET client_min_messages;

\set regress_db :DBNAME
CREATE DATABASE calo_recon_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c calo_recon_latin1
SET client_min_messages = warning;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
DO $$
BEGIN
    PERFORM * FROM calo_recon.parse_log(E'2024-01-14T21:00:00.216Z END RequestId: r1\n');
    RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
END;
$$;
\c :regress_db
DROP DATABASE calo_recon_latin1;

-- in this UTF8 database the same text parses
SELECT event_no, kind, request_id, body FROM calo_recon.parse_log(E'2024-01-14T21:00:00.216Z END RequestId: r1\n');
