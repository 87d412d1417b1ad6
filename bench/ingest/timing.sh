# Timing shared by the bench/ingest scripts (sourced).
#
# timed DB SQL...: "wall cpu" of the statements, run in one session: the wall
# seconds psql's \timing gives (summed) and the CPU seconds of the backend
# that ran them (/proc/PID/stat, triggers included), which other work on the
# machine disturbs less than the wall time
timed() {
  local db=$1 sql cpu args=()
  shift
  cpu="SELECT 'cpu', s[14]::bigint + s[15]::bigint FROM (SELECT pg_catalog.string_to_array(pg_catalog.pg_read_file('/proc/' || pg_catalog.pg_backend_pid() || '/stat'), ' ')) AS t(s)"
  args+=(-c "$cpu" -c '\timing on')
  for sql in "$@"; do args+=(-c "$sql"); done
  args+=(-c '\timing off' -c "$cpu")
  psql -qAtX -d "$db" -v ON_ERROR_STOP=1 "${args[@]}" | awk -F'|' -v tck="$(getconf CLK_TCK)" '
    /^cpu\|/ { c[++n] = $2 }
    /^Time: / { split($0, t, " "); ms += t[2] }
    END { printf "%.3f %.2f\n", ms / 1000, (c[2] - c[1]) / tck }'
}

# best: the least wall time and the least CPU time of the runs ("wall cpu" lines)
best() { awk 'NR == 1 || $1 + 0 < w + 0 { w = $1 } NR == 1 || $2 + 0 < c + 0 { c = $2 } END { print w, c }'; }
