-- The extension installs into its own schema, is not relocatable, and its
-- settings are registered.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT extname, extrelocatable, n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'calo_recon';

-- every table that holds users' data is kept by pg_dump
SELECT c.relname
FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
JOIN pg_class c ON c.oid = cfg.oid
WHERE e.extname = 'calo_recon'
ORDER BY 1;

SELECT code, minor_unit FROM calo_recon.currencies
WHERE code IN ('BHD', 'SAR', 'AED', 'KWD', 'QAR', 'JPY') ORDER BY code;

-- a user override of a built-in currency replaces it and becomes dumpable
INSERT INTO calo_recon.currencies (code, minor_unit) VALUES ('JPY', 2);
UPDATE calo_recon.currencies SET minor_unit = 2 WHERE code = 'KWD';
SELECT code, minor_unit, builtin FROM calo_recon.currencies
WHERE code IN ('JPY', 'KWD') ORDER BY code;

LOAD 'calo_recon';
SELECT name, context FROM pg_settings WHERE name LIKE 'calo_recon.%' ORDER BY name;
