#!/bin/bash
# bench-work.sh DIR TAR GITFILES COMMITS: the real-program figures of tests/bench-all.sh in
# DIR (created; its parent must exist), with TAR a tar of a source tree on the same peer.
# Self-contained (tests/bench-all.sh runs it as `BASH -c "set -- ARGS; $(cat it)"` in a
# tethered bash, which cannot see /tether). Prints one "name value" line per figure:
#   sqlite_journal_cps, sqlite_wal_cps: COMMITS single-row transactions (synchronous=full)
#     in one sqlite3 process, rollback journal and WAL: commits per second;
#   tar_xf_s: tar -xf TAR; tar_cf_s: tar -cf of the extracted tree; tar_x_s: tar -xf of that
#     into a second tree; diff_r_s: diff -r of the two (symbolic links compared as links: an
#     absolute one may point nowhere in a tethered process's root); rm_rf_s: rm -rf of both trees;
#   git_status_s, git_commit_s: git status, then git commit -a after editing 10 files, in a
#     repository of GITFILES files (made and committed untimed).
# Times in seconds (bash's EPOCHREALTIME: no process per clock reading).
set -eu
export GIT_AUTHOR_NAME=tether GIT_AUTHOR_EMAIL=tether@example.org GIT_COMMITTER_NAME=tether \
	GIT_COMMITTER_EMAIL=tether@example.org GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
	GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$1 GIT_CONFIG_NOSYSTEM=1 LC_ALL=C
D=$1 TAR=$2 GITFILES=$3 COMMITS=$4
rm -rf "$D" && mkdir "$D" && cd "$D"
us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
T0=0
start() { T0=$(us); }
secs() { local t=$(us); printf '%s %d.%06d\n' "$1" $(((t - T0) / 1000000)) $(((t - T0) % 1000000)); }
rate() { local t=$(us); awk -v n="$2" -v u="$((t - T0))" -v k="$1" 'BEGIN { printf "%s %.1f\n", k, n * 1e6 / (u ? u : 1) }'; }

# sqlite3: COMMITS autocommit inserts, synchronous=full, in one process.
inserts() { for ((i = 0; i < COMMITS; i++)); do echo "insert into t(v) values('row-$i');"; done; }
inserts >ins.sql
sqlite3 j.db 'create table t(k integer primary key, v text);'
start
sqlite3 -cmd 'pragma synchronous=full;' j.db <ins.sql
rate sqlite_journal_cps "$COMMITS"
sqlite3 w.db 'pragma journal_mode=wal; create table t(k integer primary key, v text);' >/dev/null
start
sqlite3 -cmd 'pragma synchronous=full;' w.db <ins.sql
rate sqlite_wal_cps "$COMMITS"
[ "$(sqlite3 j.db 'select count(*) from t')" = "$COMMITS" ] && [ "$(sqlite3 w.db 'select count(*) from t')" = "$COMMITS" ] ||
	echo "error sqlite row counts differ" >&2

# tar and diff of a source tree
mkdir a b
start
tar -xf "$TAR" -C a
secs tar_xf_s
start
tar -cf c.tar -C a .
secs tar_cf_s
start
tar -xf c.tar -C b
secs tar_x_s
start
diff -r --no-dereference a b >/dev/null
secs diff_r_s
start
rm -rf a b
secs rm_rf_s

# git on a repository of GITFILES files in 10 directories
git init -q -b main g && cd g
for ((i = 0; i < 10; i++)); do mkdir "d$i"; done
for ((i = 0; i < GITFILES; i++)); do echo "file $i" >"d$((i % 10))/f$i.txt"; done
git add -A && git commit -q -m initial
start
git status --porcelain >/dev/null
secs git_status_s
for ((i = 0; i < 10; i++)); do echo edit >>"d$i/f$i.txt"; done
start
git commit -q -am edit
secs git_commit_s
cd ..
echo "done 1"
