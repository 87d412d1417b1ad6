#!/usr/bin/env bash
# ingest_file on what committed fixtures cannot hold: an unreadable file, a
# FIFO, a symbolic link to a folder and one to a file inside the import
# folder, and '' for the whole import folder; files changed or not since the
# last walk; trees deeper than the path limits.  The files are made here.
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
# the five bad/line_ends logs (lone CR, BOM, leading blank lines; 6 transactions)
got=$(q "SELECT new_files, transactions FROM calo_recon.ingest_file('')")
[ "$got" = "8|18" ] || fail "whole folder: $got"
[ "$(q "SELECT count(*) FROM calo_recon.quarantine WHERE kind = 'file' AND source_file LIKE 'made/%'")" = 3 ] \
  || fail "a walk recorded a skipped file twice"

# A walk does not read again a file it read before, unchanged (same path,
# size, modification time and inode): proved without timing by making the
# files unreadable, then by swapping in other content of the same size under
# the old modification time.  A new modification time is read again.
AG=$DIR/again
mkdir -p "$AG"
start_log() { printf '2024-03-01T10:00:00.000Z START RequestId: %s Version: $LATEST\n' "$1"; }
start_log again-aaaa > "$AG/one.log"
echo "These are notes, not a log: $RANDOM" > "$AG/notes.txt"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$AG"
walk_again() { q "SELECT files, new_files, skipped_files, quarantined FROM calo_recon.ingest_file('made/again')"; }
got=$(walk_again)
[ "$got" = "1|1|1|1" ] || fail "first walk of made/again: $got"
chmod 000 "$AG/one.log" "$AG/notes.txt"   # changes neither size nor mtime
got=$(walk_again)
[ "$got" = "1|0|1|0" ] || fail "unchanged files were read again (counts $got)"
got=$(q "SELECT count(*) FROM calo_recon.quarantine WHERE source_file LIKE 'made/again/%' AND reason = 'unreadable'")
[ "$got" = 0 ] || fail "unchanged files were opened again: $got unreadable"
chmod 644 "$AG/one.log" "$AG/notes.txt"
touch -r "$AG/one.log" "$DIR/stamp"
start_log again-bbbb > "$AG/one.log"      # same size, same inode
touch -r "$DIR/stamp" "$AG/one.log"
got=$(walk_again)
[ "$got" = "1|0|1|0" ] || fail "same size and mtime: the file was read again (counts $got)"
# named explicitly, a file is always read
got=$(q "SELECT files, new_files FROM calo_recon.ingest_file('made/again/one.log')")
[ "$got" = "1|1" ] || fail "named file not read: $got"
start_log again-cccc > "$AG/one.log"
touch -d '2024-03-02 10:00:00' "$AG/one.log"
got=$(q "SELECT status, files, skipped_files FROM calo_recon.refresh('made/again')")
[ "$got" = "succeeded|1|1" ] || fail "a new mtime was not read again: $got"
# other content of the same size and mtime renamed into place: a new inode
start_log again-dddd > "$DIR/renamed"
touch -r "$AG/one.log" "$DIR/renamed"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR/renamed"
mv "$DIR/renamed" "$AG/one.log"
got=$(walk_again)
[ "$got" = "1|1|1|0" ] || fail "a file renamed into place was not read: $got"
got=$(q "SELECT count(*) FROM calo_recon.ingested_files WHERE file_name LIKE 'made/again/one.log%'")
[ "$got" = 4 ] || fail "ingested_files of made/again/one.log: $got"
got=$(q "SELECT path || ' ' || outcome FROM calo_recon.import_files WHERE path LIKE 'made/again/%' ORDER BY path")
[ "$got" = "made/again/notes.txt not_a_log
made/again/one.log ingested" ] || fail "import_files: $got"

# The walk's own queries reach nothing planted on the caller's search_path
# (an operator in public, a jsonb domain in pg_temp, both raising).
mkdir -p "$DIR/hostile"
start_log hostile > "$DIR/hostile/a.log"
echo "not a log" > "$DIR/hostile/b.txt"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DIR/hostile"
got=$(psql -qAtX -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<'SQL'
CREATE FUNCTION public.planted_eq(text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$BEGIN RAISE EXCEPTION 'planted operator ran'; END$$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.planted_eq);
CREATE FUNCTION public.planted_check(text) RETURNS boolean LANGUAGE plpgsql
    AS $$BEGIN RAISE EXCEPTION 'planted domain ran'; END$$;
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (public.planted_check(VALUE::text));
SET search_path = public, pg_catalog;
SELECT files, skipped_files FROM calo_recon.ingest_file('made/hostile');
SQL
)
q "DROP OPERATOR public.= (text, text); DROP FUNCTION public.planted_eq(text, text), public.planted_check(text)"
[ "$got" = "1|1" ] || fail "walk under a hostile search_path: $got"

# Trees deeper than the limits: 25 names of 200 bytes (over the OS's 4 KB
# PATH_MAX) and 70 levels of one-letter folders (over the walk's 64 levels),
# a log at the bottom of each, an unreadable folder beside them: each is
# quarantined where it crosses a limit and the walk goes on.
DP=$DIR/deep
mkdir -p "$DP/locked" "$DP/many"
start_log deep-top > "$DP/top.log"
long=$(printf 'n%.0s' $(seq 200))
( cd "$DP" && for i in $(seq 25); do mkdir "$long" && cd "$long" || exit 1; done
  start_log deep-long > bottom.log ) || fail "could not make the long tree"
( cd "$DP/many" && for i in $(seq 70); do mkdir d && cd d || exit 1; done
  start_log deep-many > bottom.log ) || fail "could not make the deep tree"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DP"
chmod 000 "$DP/locked"
got=$(q "SELECT files, new_files, skipped_files FROM calo_recon.ingest_file('made/deep')" 2>&1)
[ "$got" = "1|1|3" ] || fail "walk of deep trees: $got"
# the first folder over 1023 bytes (the sixth long name) and over 64 levels
too_long=made/deep; for i in $(seq 6); do too_long=$too_long/$long; done
too_deep=made/deep/many; for i in $(seq 62); do too_deep=$too_deep/d; done
got=$(q "SELECT string_agg(source_file || ' ' || reason, E'\n' ORDER BY reason, source_file) FROM calo_recon.quarantine WHERE kind = 'file' AND source_file LIKE 'made/deep/%'")
[ "$got" = "$too_deep path_too_long
$too_long path_too_long
made/deep/locked unreadable" ] || fail "deep trees quarantined: $got"
got=$(err "SELECT * FROM calo_recon.ingest_file('$too_long/x.log')")
[[ "$got" == "22023 "* ]] || fail "named path over the limit: $got"
chmod 755 "$DP/locked"

# A loop of symbolic links: named, 22023 saying so (not XX000); in a walk,
# quarantined as symlink_loop and the walk goes on.
LP=$DIR/loops
mkdir -p "$LP"
start_log loop-beside > "$LP/beside.log"
ln -s loop-b "$LP/loop-a"
ln -s loop-a "$LP/loop-b"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$LP"
got=$(err "SELECT * FROM calo_recon.ingest_file('made/loops/loop-a')")
[ "$got" = "22023 could not open \"made/loops/loop-a\" in calo_recon.import_directory: Too many levels of symbolic links" ] \
  || fail "named symbolic link loop: $got"
got=$(q "SELECT files, new_files, skipped_files FROM calo_recon.ingest_file('made/loops')")
[ "$got" = "1|1|2" ] || fail "walk with a symbolic link loop: $got"
got=$(q "SELECT string_agg(source_file || ' ' || reason, ' ' ORDER BY source_file) FROM calo_recon.quarantine WHERE kind = 'file' AND source_file LIKE 'made/loops/%'")
[ "$got" = "made/loops/loop-a symlink_loop made/loops/loop-b symlink_loop" ] || fail "symbolic link loop quarantined: $got"

# Names a text column cannot hold: bytes that are not UTF-8 (0xff 0xfe) and
# control characters (a newline; 0x01 in a folder's name).  A walk reads no
# such file and enters no such folder: each is skipped and quarantined
# bad_file_name under its escaped name (\xHH, a backslash doubled), the same
# rule as a path named explicitly (22023).  Were stored as they were: the
# columns could not be read back, and a dump lost the tables.
NM=$DIR/names
mkdir -p "$NM" "$NM/dir"$'\x01'
start_log names-bad-utf8 > "$NM/bad"$'\xff\xfe'".log"
start_log names-newline > "$NM/nl"$'\n'"name.log"
start_log names-in-folder > "$NM/dir"$'\x01'"/inside.log"
start_log names-backslash > "$NM/back\\slash.log"
start_log names-ok > "$NM/ok.log"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$NM"
got=$(q "SELECT files, new_files, skipped_files, quarantined FROM calo_recon.ingest_file('made/names')")
[ "$got" = "2|2|3|3" ] || fail "walk of bad names: $got"
got=$(q "SELECT string_agg(source_file || ' ' || reason, ' ' ORDER BY source_file) FROM calo_recon.quarantine WHERE kind = 'file' AND source_file LIKE 'made/names/%'")
[ "$got" = 'made/names/bad\xff\xfe.log bad_file_name made/names/dir\x01 bad_file_name made/names/nl\x0aname.log bad_file_name' ] \
  || fail "bad names quarantined: $got"
got=$(q "SELECT detail ->> 'message' FROM calo_recon.quarantine WHERE source_file = 'made/names/bad\xff\xfe.log'")
[ "$got" = "the name has a byte that is not valid UTF8 (byte 0xff at offset 3 of the name); it is not read" ] \
  || fail "bad name's detail: $got"
# a backslash in a name is no problem: that file is read under its own name
got=$(q "SELECT string_agg(file_name, ' ' ORDER BY file_name) FROM calo_recon.ingested_files WHERE file_name LIKE 'made/names/%'")
[ "$got" = 'made/names/back\slash.log made/names/ok.log' ] || fail "names ingested: $got"
# every text column that keeps a name reads back as valid UTF-8
got=$(q "SELECT count(*) FROM (SELECT source_file AS s FROM calo_recon.log_events UNION ALL SELECT source_file FROM calo_recon.transactions
                               UNION ALL SELECT source_file FROM calo_recon.quarantine UNION ALL SELECT file_name FROM calo_recon.ingested_files
                               UNION ALL SELECT path FROM calo_recon.import_files) n
         WHERE convert_from(convert_to(n.s, 'UTF8'), 'UTF8') LIKE 'made/names/%'" 2>&1)
[ "$got" = 9 ] || fail "names read back: $got"
# walking again: skipped again, not recorded twice
got=$(q "SELECT files, skipped_files, quarantined FROM calo_recon.ingest_file('made/names')")
[ "$got" = "2|3|0" ] || fail "second walk of bad names: $got"
# named explicitly, the same rule: 22023
got=$(err "SELECT * FROM calo_recon.ingest_file(E'made/names/nl\\nname.log')")
[[ "$got" == "22023 "* ]] || fail "named path with a newline: $got"

echo "ingest_files.sh: ok"
