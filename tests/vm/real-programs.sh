#!/bin/bash
# real-programs.sh DIR: Debian's git, sqlite3 and python3 at work in DIR (created; its
# parent must exist), printing only what must come out the same wherever DIR lives:
# tests/vm/remote-client.sh runs it untethered on the client's /tmp and tethered on the
# server's export, and compares. Fixed identities and dates make git's object ids part
# of the transcript.
set -eu
export GIT_AUTHOR_NAME=tether GIT_AUTHOR_EMAIL=tether@example.org GIT_COMMITTER_NAME=tether \
	GIT_COMMITTER_EMAIL=tether@example.org GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
	GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$1 GIT_CONFIG_NOSYSTEM=1 LC_ALL=C
rm -rf "$1" && mkdir "$1" && cd "$1"
# Each part's wall time ("time PART: MS ms", not compared: tethered vs untethered cost).
ms() { echo $(($(date +%s%N) / 1000000)); }
t=$(ms)
lap() { echo "time $1: $(($(ms) - t)) ms"; t=$(ms); }

# git: init, add, commit, rename, remove, edit, gc (repack: pack files read through mmap),
# fsck, and reads of the packed history.
git init -q -b main repo && cd repo
for i in $(seq 1 30); do printf 'file %s\n' "$i" >"f$i.txt"; done
mkdir sub && seq 1 2000 >sub/numbers
git add . && git commit -q -m first
sed -i 's/5/five/' sub/numbers && git rm -q f3.txt && git mv f4.txt sub/f4.txt
git commit -q -am second
git gc -q
echo "git log: $(git log --format='%H %s' | tr '\n' ' ')"
echo "git status: $(git status --porcelain | wc -l) changes"
echo "git count-objects: $(git count-objects -v | grep -E '^(count|in-pack|packs):' | tr '\n' ' ')"
git fsck --strict --no-progress && echo "git fsck: ok"
echo "git show: $(git show HEAD~1:sub/numbers | sha256sum | cut -c1-16) $(git diff --stat HEAD~1 | tail -n1)"
cd ..
lap git

# sqlite3: a rollback journal with full syncs, then WAL (its index a shared writable
# mapping of the -shm file), written by one process while another reads, and checkpointed.
sqlite3 journal.db 'pragma synchronous=full; create table t(k integer primary key, v text);'
for i in $(seq 0 9); do
	sqlite3 journal.db "begin; $(for j in $(seq 1 20); do printf "insert into t(v) values('%s-%s');" $i $j; done) commit;"
done
sqlite3 journal.db 'create index tv on t(v); delete from t where k % 7 = 0; vacuum;'
echo "sqlite journal: $(sqlite3 journal.db 'pragma integrity_check; select count(*), sum(k), max(v) from t;' | tr '\n' ' ')"
sqlite3 wal.db 'pragma journal_mode=wal; create table t(x);
	insert into t select value from generate_series(1, 500);' >/dev/null
# A reader holds the database open (its own mapping of the index) while writers commit;
# each waits for the others' locks (a busy timeout, as applications set one: without it a
# connection that finds the index being set up fails at once with "database is locked").
{ echo 'select count(*) from t;'; sleep 1; echo 'select count(*), sum(x) from t;'; } |
	sqlite3 -cmd '.timeout 20000' wal.db >wal.reader &
for i in 1 2 3; do
	sqlite3 -cmd '.timeout 20000' wal.db "insert into t select value from generate_series(1, 100 * $i);"
done
wait
echo "sqlite wal: $(sqlite3 -cmd '.timeout 20000' wal.db 'pragma wal_checkpoint(truncate); pragma integrity_check;
	select count(*), sum(x) from t; pragma journal_mode;' | tr '\n' ' ')"
rm -f wal.reader
lap sqlite3

# python3: a tree of files, shutil.copytree (sendfile between remote files), tempfile, a
# read-only mmap, a shared writable one, os.walk.
python3 - <<'PY'
import hashlib, mmap, os, shutil, tempfile
os.makedirs('py/src/a/b')
for i in range(20):
    with open(f'py/src/a/f{i}', 'wb') as f:
        f.write(bytes(range(256)) * (i + 1))
    os.symlink(f'f{i}', f'py/src/a/l{i}')
shutil.copytree('py/src', 'py/dst', symlinks=True)
with tempfile.NamedTemporaryFile(dir='py', delete=False) as t:
    t.write(b'tether' * 5000)
with open(t.name, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    print('python mmap:', len(m), hashlib.sha256(m).hexdigest()[:16], m.find(b'rtet'))
with open(t.name, 'r+b') as f, mmap.mmap(f.fileno(), 0) as m:
    m[100:106] = b'mapped'
    m.flush()
    m[20000:20006] = b'stores'
with open(t.name, 'rb') as f:
    d = f.read()
print('python shared mmap:', d.find(b'mapped'), d.find(b'stores'), hashlib.sha256(d).hexdigest()[:16])
os.unlink(t.name)
h, n = hashlib.sha256(), 0
for d, dirs, files in sorted(os.walk('py/dst')):
    for name in sorted(files):
        p = os.path.join(d, name)
        h.update(p.encode() + (os.readlink(p).encode() if os.path.islink(p) else open(p, 'rb').read()))
        n += 1
print('python tree:', n, 'entries', h.hexdigest()[:16])
PY
lap python3
echo "tree: $(find . -path ./repo/.git -prune -o -print | sort | sha256sum | cut -c1-16)"
