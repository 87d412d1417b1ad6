#!/usr/bin/env bash
# ingest_file on what committed fixtures cannot hold: an unreadable file, a
# FIFO, a symbolic link to a folder and one to a file inside the import
# folder, and '' for the whole import folder.  The files are made here.
set -uo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "ingest_files.sh: FAIL: $*"; exit 1; }
DB=calo_ingest_files
DIR=$CR_ROOT/import/made
cleanup() { dropdb --if-exists "$DB" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT
q() { psql -qAtX -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
# SQLSTATE and message of a statement that must fail
err() { psql -qAtX -v VERBOSITY=verbose -d "$DB" -c "$1" 2>&1 >/dev/null | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): /\1 /p' | head -n 1; }

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB" || fail "createdb"
q "CREATE EXTENSION calo_recon" >/dev/null || fail "CREATE EXTENSION"

SAMPLE=$(ls test/data/samples/balance-sync-logs/*/2023-*/000000.gz)
rm -rf "$DIR"
mkdir -p "$DIR/logs" "$DIR/other"
cp "$SAMPLE" "$DIR/logs/a.gz"
cp "$SAMPLE" "$DIR/logs/locked.gz"
chmod 000 "$DIR/logs/locked.gz"
mkfifo "$DIR/logs/pipe"
ln -s ../other "$DIR/logs/folder-link"
ln -s a.gz "$DIR/logs/z-link.gz"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DIR"

# named explicitly: errors
got=$(err "SELECT * FROM calo_recon.ingest_file('made/logs/locked.gz')")
[[ "$got" == "42501 cannot ingest \"made/logs/locked.gz\": the server has no permission to read the file" ]] || fail "unreadable file: $got"
got=$(err "SELECT * FROM calo_recon.ingest_file('made/logs/pipe')")
[[ "$got" == "42809 \"made/logs/pipe\" is neither a file nor a folder" ]] || fail "FIFO: $got"

# in a walk: the log once (the link to it is the same content), the rest
# skipped and quarantined; the walk neither blocks on the FIFO nor follows the folder link
got=$(q "SELECT files, new_files, skipped_files, transactions FROM calo_recon.ingest_file('made/logs')")
[ "$got" = "2|1|3|5" ] || fail "walk counts: $got"
got=$(q "SELECT string_agg(source_file || ':' || reason, ' ' ORDER BY source_file) FROM calo_recon.quarantine WHERE kind = 'file'")
[ "$got" = "made/logs/folder-link:symlinked_folder made/logs/locked.gz:unreadable made/logs/pipe:not_a_regular_file" ] \
  || fail "quarantine: $got"
got=$(q "SELECT string_agg(file_name, ' ') FROM calo_recon.ingested_files")
[ "$got" = "made/logs/a.gz" ] || fail "ingested_files: $got"

# '' walks the whole import folder (samples/, bad/, made/): new are the
# second sample (the first one is a.gz's content), the two bad/walk logs and
# the three bad/line_ends logs (lone CR, BOM; 4 transactions)
got=$(q "SELECT new_files, transactions FROM calo_recon.ingest_file('')")
[ "$got" = "6|16" ] || fail "whole folder: $got"
[ "$(q "SELECT count(*) FROM calo_recon.quarantine WHERE kind = 'file' AND source_file LIKE 'made/%'")" = 3 ] \
  || fail "a walk recorded a skipped file twice"
echo "ingest_files.sh: ok"
