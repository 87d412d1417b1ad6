\echo Use "ALTER EXTENSION calo_recon UPDATE TO '1.2'" to load this file. \quit
-- calo_recon 1.1 -> 1.2 (under development: this script may change until 1.2
-- is released, then it is frozen like the scripts before it). Every change to
-- sql/install/*.sql is also written here as a migration.
