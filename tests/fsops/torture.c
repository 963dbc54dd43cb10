// SPDX-License-Identifier: GPL-2.0
/*
 * torture SEED DIR [ROUNDS]: a deterministic file-system workload for the crash-torture
 * test (tests/torture.sh). Creates DIR (its parents may exist, DIR must not) and runs
 * ROUNDS (default 30) rounds of operations in it, chosen by a PRNG seeded from SEED:
 * creates with content derived from (seed, write, offset), appends through O_APPEND fds,
 * pwrite and lseek+write overwrites (also past the end: holes), ftruncate/truncate down
 * and up, O_TRUNC reopen + rewrite, renames (also over an existing file, and of files that
 * are open), nested mkdir/rmdir, unlink, symlinks, fsync/fdatasync, up to 10 files kept
 * open across rounds; some rounds fork 1-2 children that work in their own subdirectory
 * (the parent checks their exit status and, from a dry run of the same workload, their
 * files). An in-memory model holds every file's expected bytes: after each round some
 * files are read back and a directory listed and compared; at the end the manifest of DIR
 * (every entry, every file's SHA-256) against the model's. Any mismatch or failed system call: a message on
 * stderr, exit status 1. Nothing depends on time or pids: the same SEED writes the same
 * tree and prints the same summary on stdout.
 *
 * torture --manifest DIR: one line per entry under DIR, sorted by path:
 *   PATH TYPE MODE SIZE SHA256
 * TYPE f, d, l (or ?), MODE octal permission bits, SIZE bytes (files: st_size, symlinks:
 * the target's length, directories: -), SHA256 of the content (symlinks: of the target;
 * directories: -). Two trees are equal when their manifests are.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../selftests/tether_wire.h"

/* ---- errors ------------------------------------------------------------------------- */
static char who[48] = "torture";
static int cur_round = -1, is_child;

static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: round %d: ", who, cur_round);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (is_child)
		_exit(1);
	exit(1);
}
#define sysdie(what, path) die("%s %s: %s", what, path, strerror(errno))

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* ---- SHA-256: tether_wire.h's (tests/selftests) -------------------------------------- */
/* hex: 65 bytes */
static void sha_hex(struct tt_sha256 *s, char *hex)
{
	uint8_t d[32];

	tt_sha256_final(s, d);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

static void sha_of(const void *p, size_t n, char *hex)
{
	struct tt_sha256 s;

	tt_sha256_init(&s);
	tt_sha256_update(&s, p, n);
	sha_hex(&s, hex);
}

/* ---- manifests ---------------------------------------------------------------------- */
struct lines {
	char **v;
	size_t n;
};

static void lines_add(struct lines *l, const char *path, char type, unsigned mode, long long size,
		      const char *hex)
{
	char sz[32], *s;

	if (size < 0)
		strcpy(sz, "-");
	else
		snprintf(sz, sizeof(sz), "%lld", size);
	if (asprintf(&s, "%s %c %o %s %s", path, type, mode, sz, hex) < 0)
		die("out of memory");
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = s;
}

static int cmp_path(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t nx = strcspn(x, " "), ny = strcspn(y, " ");
	int c = memcmp(x, y, nx < ny ? nx : ny);

	return c ? c : (nx > ny) - (nx < ny);
}

static void lines_sort(struct lines *l)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_path);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void hash_fd(int fd, const char *path, char *hex)
{
	static unsigned char buf[65536];
	struct tt_sha256 s;
	ssize_t n;

	tt_sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0)
			sysdie("read", path);
		tt_sha256_update(&s, buf, n);
	}
	sha_hex(&s, hex);
}

/* walk ROOT/REL (REL "" or ending in '/') into L */
static void walk(const char *root, const char *rel, struct lines *l)
{
	char dpath[2 * PATH_MAX], path[2 * PATH_MAX], rpath[PATH_MAX], hex[65], target[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	snprintf(dpath, sizeof(dpath), "%s/%s", root, rel);
	d = opendir(dpath);
	if (!d)
		sysdie("opendir", dpath);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				sysdie("readdir", dpath);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(rpath, sizeof(rpath), "%s%s", rel, de->d_name);
		snprintf(path, sizeof(path), "%s/%s", root, rpath);
		if (lstat(path, &st))
			sysdie("lstat", path);
		if (S_ISREG(st.st_mode)) {
			fd = open(path, O_RDONLY);
			if (fd < 0)
				sysdie("open", path);
			hash_fd(fd, path, hex);
			if (close(fd))
				sysdie("close", path);
			lines_add(l, rpath, 'f', st.st_mode & 07777, st.st_size, hex);
		} else if (S_ISDIR(st.st_mode)) {
			lines_add(l, rpath, 'd', st.st_mode & 07777, -1, "-");
			strcat(rpath, "/");
			walk(root, rpath, l);
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(path, target, sizeof(target));

			if (n < 0)
				sysdie("readlink", path);
			sha_of(target, n, hex);
			lines_add(l, rpath, 'l', st.st_mode & 07777, n, hex);
		} else {
			lines_add(l, rpath, '?', st.st_mode & 07777, st.st_size, "-");
		}
	}
	if (closedir(d))
		sysdie("closedir", dpath);
}

/* ---- PRNG, content ------------------------------------------------------------------ */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

/* uniform-enough in [0, n) */
static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnext(r) % n) : 0;
}

/* content of write KEY at file offset OFF */
static void fill(unsigned char *b, size_t n, uint64_t key, uint64_t off)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t o = off + i;

		b[i] = (unsigned char)(mix64(key ^ ((o >> 3) * 0x100000001b3ULL)) >> ((o & 7) * 8));
	}
}

/* ---- the model ---------------------------------------------------------------------- */
#define MAXF 28
#define MAXD 14
#define MAXL 6
#define MAXOPEN 10
#define MAXSIZE (320 * 1024)
#define PLEN 96

enum { FD_NONE, FD_RDWR, FD_WRONLY, FD_APPEND };

struct mfile {
	char path[PLEN]; /* relative to the world's root */
	unsigned char *data;
	size_t size, cap;
	int fd, fdmode;
	off_t pos; /* the fd's offset (FD_RDWR, FD_WRONLY) */
	mode_t mode;
	int live;
};
struct mdir {
	char path[PLEN]; /* "" = the root, else "d1/d4/" */
	mode_t mode;
	int depth, live;
};
struct mlink {
	char path[PLEN], target[PLEN];
	int live;
};
struct world {
	struct rng r;
	uint64_t seed;
	int dry;
	char prefix[PLEN]; /* path of the world's root from the cwd */
	struct mfile f[MAXF];
	struct mdir d[MAXD];
	struct mlink l[MAXL];
	int next_id, nopen;
	unsigned long long bytes, ops, writes;
	char kids[64][PLEN]; /* children's subdirectories in the root (parent world) */
	int nkids;
};

static unsigned char *scratch;  /* write data */
static unsigned char *readbuf;  /* read-back data */
#define SCRATCH (MAXSIZE + 65536)

static const char *P(struct world *w, const char *rel)
{
	static char buf[4][2 * PLEN];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", w->prefix, rel);
	return buf[k];
}

static void model_write(struct mfile *f, size_t off, const unsigned char *b, size_t n)
{
	if (off + n > f->cap) {
		f->cap = off + n + 4096;
		f->data = xrealloc(f->data, f->cap);
	}
	if (off > f->size)
		memset(f->data + f->size, 0, off - f->size);
	memcpy(f->data + off, b, n);
	if (off + n > f->size)
		f->size = off + n;
}

static void model_trunc(struct mfile *f, size_t n)
{
	if (n > f->cap) {
		f->cap = n + 4096;
		f->data = xrealloc(f->data, f->cap);
	}
	if (n > f->size)
		memset(f->data + f->size, 0, n - f->size);
	f->size = n;
}

/* ---- system calls (none in a dry run) ----------------------------------------------- */
static int xopen(struct world *w, const char *rel, int flags, mode_t mode)
{
	int fd;

	if (w->dry)
		return 1000;
	fd = open(P(w, rel), flags, mode);
	if (fd < 0)
		sysdie("open", P(w, rel));
	return fd;
}

static void xclose(struct world *w, int fd, const char *rel)
{
	if (!w->dry && close(fd))
		sysdie("close", P(w, rel));
}

static void xwrite(struct world *w, int fd, const unsigned char *b, size_t n, const char *rel)
{
	while (!w->dry && n) {
		ssize_t k = write(fd, b, n);

		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			sysdie("write", P(w, rel));
		}
		b += k, n -= k;
	}
}

static void xpwrite(struct world *w, int fd, const unsigned char *b, size_t n, off_t off, const char *rel)
{
	while (!w->dry && n) {
		ssize_t k = pwrite(fd, b, n, off);

		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			sysdie("pwrite", P(w, rel));
		}
		b += k, n -= k, off += k;
	}
}

static void xlseek_check(struct world *w, int fd, off_t off, int whence, off_t want, const char *rel)
{
	off_t got;

	if (w->dry)
		return;
	got = lseek(fd, off, whence);
	if (got < 0)
		sysdie("lseek", P(w, rel));
	if (got != want)
		die("lseek %s: offset %lld, expected %lld", P(w, rel), (long long)got, (long long)want);
}

#define XCALL(w, call, what, rel)                      \
	do {                                           \
		if (!(w)->dry && (call))               \
			sysdie(what, P((w), (rel)));   \
	} while (0)

/* ---- checks ------------------------------------------------------------------------- */
/* read F (all of it, or a window of at most 64 KiB) and compare it with the model */
static void verify_file(struct world *w, struct mfile *f, int full)
{
	size_t off = 0, len = f->size, got = 0;
	struct stat st;
	int fd, own;

	if (!full && f->size > 65536) {
		off = below(&w->r, f->size - 65536 + 1);
		len = 65536;
	}
	if (w->dry)
		return;
	own = f->fdmode != FD_RDWR;
	fd = own ? open(P(w, f->path), O_RDONLY) : f->fd;
	if (fd < 0)
		sysdie("open", P(w, f->path));
	if (fstat(fd, &st))
		sysdie("fstat", P(w, f->path));
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != f->mode)
		die("%s: mode %o, expected a file with mode %o", P(w, f->path), st.st_mode, f->mode);
	if ((size_t)st.st_size != f->size)
		die("%s: size %lld, expected %zu", P(w, f->path), (long long)st.st_size, f->size);
	while (got < len) {
		ssize_t k = pread(fd, readbuf + got, len - got, off + got);

		if (k < 0)
			sysdie("pread", P(w, f->path));
		if (k == 0)
			die("%s: end of file at %zu, expected %zu bytes", P(w, f->path), off + got, f->size);
		got += k;
	}
	if (memcmp(readbuf, f->data + off, len)) {
		size_t i = 0, bad = 0, zeros = 0;

		while (readbuf[i] == f->data[off + i])
			i++;
		for (size_t j = i; j < len; j++) {
			bad += readbuf[j] != f->data[off + j];
			zeros += readbuf[j] != f->data[off + j] && !readbuf[j];
		}
		die("%s: content differs from offset %zu: %zu of the %zu bytes read at %zu differ (%zu of them read as 0)",
		    P(w, f->path), off + i, bad, len, off, zeros);
	}
	if (own && close(fd))
		sysdie("close", P(w, f->path));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* in DIR (a model directory path, "" or ending in '/'): the entries the model expects */
static void expected_names(struct world *w, const char *dir, struct lines *l)
{
	size_t n = strlen(dir);
	int i;

#define UNDER(p) (!strncmp((p), dir, n) && (p)[n] && !strchr((p) + n, '/'))
#define ADD(name)                                                   \
	do {                                                        \
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v)); \
		l->v[l->n++] = strdup(name);                        \
		if (!l->v[l->n - 1])                                \
			die("out of memory");                       \
	} while (0)
	for (i = 0; i < MAXF; i++)
		if (w->f[i].live && UNDER(w->f[i].path))
			ADD(w->f[i].path + n);
	for (i = 0; i < MAXL; i++)
		if (w->l[i].live && UNDER(w->l[i].path))
			ADD(w->l[i].path + n);
	for (i = 1; i < MAXD; i++) {
		char name[PLEN];

		if (!w->d[i].live || strncmp(w->d[i].path, dir, n))
			continue;
		snprintf(name, sizeof(name), "%s", w->d[i].path + n);
		name[strlen(name) - 1] = 0; /* the trailing '/' */
		if (name[0] && !strchr(name, '/'))
			ADD(name);
	}
	if (!n)
		for (i = 0; i < w->nkids; i++)
			ADD(w->kids[i]);
#undef UNDER
#undef ADD
}

static void verify_dir(struct world *w, const char *dir)
{
	struct lines want = { 0 }, got = { 0 };
	const char *path = dir[0] || w->prefix[0] ? P(w, dir) : ".";
	struct dirent *de;
	DIR *d;

	if (w->dry)
		return;
	expected_names(w, dir, &want);
	d = opendir(path);
	if (!d)
		sysdie("opendir", path);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				sysdie("readdir", path);
			break;
		}
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			lines_add(&got, de->d_name, 'x', 0, 0, "");
	}
	if (closedir(d))
		sysdie("closedir", path);
	for (size_t i = 0; i < got.n; i++)
		*strchr(got.v[i], ' ') = 0;
	qsort(want.v, want.n, sizeof(char *), cmp_str);
	qsort(got.v, got.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < want.n || i < got.n; i++) {
		int c = i >= want.n ? 1 : i >= got.n ? -1 : strcmp(want.v[i], got.v[i]);

		if (c < 0)
			die("directory %s: %s is missing", path, want.v[i]);
		if (c > 0)
			die("directory %s: unexpected entry %s", path, got.v[i]);
	}
	lines_free(&want);
	lines_free(&got);
}

/* the manifest the model predicts (paths prefixed with PFX) */
static void model_manifest(struct world *w, const char *pfx, struct lines *l)
{
	char path[2 * PLEN], hex[65];
	int i;

	for (i = 0; i < MAXF; i++) {
		if (!w->f[i].live)
			continue;
		sha_of(w->f[i].data, w->f[i].size, hex);
		snprintf(path, sizeof(path), "%s%s", pfx, w->f[i].path);
		lines_add(l, path, 'f', w->f[i].mode, w->f[i].size, hex);
	}
	for (i = 1; i < MAXD; i++) {
		if (!w->d[i].live)
			continue;
		snprintf(path, sizeof(path), "%s%s", pfx, w->d[i].path);
		path[strlen(path) - 1] = 0;
		lines_add(l, path, 'd', w->d[i].mode, -1, "-");
	}
	for (i = 0; i < MAXL; i++) {
		if (!w->l[i].live)
			continue;
		sha_of(w->l[i].target, strlen(w->l[i].target), hex);
		snprintf(path, sizeof(path), "%s%s", pfx, w->l[i].path);
		lines_add(l, path, 'l', 0777, strlen(w->l[i].target), hex);
	}
}

/* ---- picking ------------------------------------------------------------------------ */
static int pick_file(struct world *w, int want_open)
{
	int idx[MAXF], n = 0;

	for (int i = 0; i < MAXF; i++)
		if (w->f[i].live && (!want_open || w->f[i].fd >= 0))
			idx[n++] = i;
	return n ? idx[below(&w->r, n)] : -1;
}

static int pick_dir(struct world *w, int maxdepth)
{
	int idx[MAXD], n = 0;

	for (int i = 0; i < MAXD; i++)
		if (w->d[i].live && w->d[i].depth <= maxdepth)
			idx[n++] = i;
	return idx[below(&w->r, n)]; /* the root is always there */
}

static int free_slot_f(struct world *w)
{
	for (int i = 0; i < MAXF; i++)
		if (!w->f[i].live)
			return i;
	return -1;
}

static size_t pick_size(struct world *w)
{
	uint32_t c = below(&w->r, 100);

	if (c < 75)
		return below(&w->r, 6000);
	if (c < 95)
		return 6000 + below(&w->r, 40000);
	return 64 * 1024 + below(&w->r, 160 * 1024);
}

/* a new name in directory D: DIR/<c><id> */
static void new_name(struct world *w, int d, char c, char *out)
{
	char buf[PLEN];

	snprintf(buf, sizeof(buf), "%s%c%d", w->d[d].path, c, w->next_id++);
	memcpy(out, buf, PLEN);
}

/* new content for a write of N bytes at OFF: in scratch */
static const unsigned char *gen(struct world *w, size_t n, size_t off)
{
	fill(scratch, n, mix64(w->seed ^ mix64(++w->writes)), off);
	w->bytes += n;
	return scratch;
}

static void close_file(struct world *w, struct mfile *f)
{
	if (f->fd < 0)
		return;
	xclose(w, f->fd, f->path);
	f->fd = -1;
	f->fdmode = FD_NONE;
	w->nopen--;
}

/* ---- operations: each returns 0 when it does not apply now -------------------------- */
static int op_create(struct world *w)
{
	static const mode_t modes[] = { 0644, 0600, 0640, 0604 };
	int s = free_slot_f(w), d, fd, rdwr;
	struct mfile *f;
	size_t n;

	if (s < 0)
		return 0;
	f = &w->f[s];
	d = pick_dir(w, 3);
	new_name(w, d, 'f', f->path);
	f->mode = modes[below(&w->r, 4)];
	rdwr = below(&w->r, 2);
	n = pick_size(w);
	fd = xopen(w, f->path, O_CREAT | O_EXCL | (rdwr ? O_RDWR : O_WRONLY), f->mode);
	f->live = 1;
	f->size = 0;
	xwrite(w, fd, gen(w, n, 0), n, f->path);
	model_write(f, 0, scratch, n);
	if (w->nopen < MAXOPEN && below(&w->r, 2)) {
		f->fd = fd;
		f->fdmode = rdwr ? FD_RDWR : FD_WRONLY;
		f->pos = n;
		w->nopen++;
	} else {
		f->fd = -1;
		f->fdmode = FD_NONE;
		xclose(w, fd, f->path);
	}
	return 1;
}

/* a writable fd on F that is not O_APPEND: its own (*tmp = 0) or a new one (*tmp = 1) */
static int wfd(struct world *w, struct mfile *f, int *tmp)
{
	*tmp = f->fdmode != FD_RDWR && f->fdmode != FD_WRONLY;
	return *tmp ? xopen(w, f->path, O_WRONLY, 0) : f->fd;
}

static int op_append(struct world *w)
{
	int i = pick_file(w, 0), fd, tmp = 0;
	struct mfile *f;
	size_t n;

	if (i < 0)
		return 0;
	f = &w->f[i];
	n = below(&w->r, 10) ? 1 + below(&w->r, 4096) : 4096 + below(&w->r, 60000);
	if (f->size + n > MAXSIZE)
		return 0;
	if (f->fdmode == FD_APPEND) {
		fd = f->fd;
	} else if (f->fd < 0 && w->nopen < MAXOPEN) {
		fd = f->fd = xopen(w, f->path, O_WRONLY | O_APPEND, 0);
		f->fdmode = FD_APPEND;
		w->nopen++;
	} else {
		fd = xopen(w, f->path, O_WRONLY | O_APPEND, 0);
		tmp = 1;
	}
	xwrite(w, fd, gen(w, n, f->size), n, f->path);
	model_write(f, f->size, scratch, n);
	/* an O_APPEND write leaves the offset at the end of the file */
	xlseek_check(w, fd, 0, SEEK_CUR, f->size, f->path);
	if (tmp)
		xclose(w, fd, f->path);
	return 1;
}

static int op_pwrite(struct world *w)
{
	int i = pick_file(w, 0), fd, tmp;
	struct mfile *f;
	size_t off, n;

	if (i < 0)
		return 0;
	f = &w->f[i];
	off = below(&w->r, f->size + 4096);
	n = 1 + below(&w->r, below(&w->r, 4) ? 4096 : 32768);
	if (off + n > MAXSIZE)
		return 0;
	fd = wfd(w, f, &tmp);
	xpwrite(w, fd, gen(w, n, off), n, off, f->path);
	model_write(f, off, scratch, n);
	if (tmp)
		xclose(w, fd, f->path);
	return 1;
}

/* lseek + write through a kept fd (the client keeps the offset) */
static int op_seekwrite(struct world *w)
{
	int i = pick_file(w, 0);
	struct mfile *f;
	size_t n;

	if (i < 0)
		return 0;
	f = &w->f[i];
	if (f->fdmode != FD_RDWR && f->fdmode != FD_WRONLY) {
		if (f->fd >= 0 || w->nopen >= MAXOPEN)
			return 0;
		f->fd = xopen(w, f->path, O_RDWR, 0);
		f->fdmode = FD_RDWR;
		f->pos = 0;
		w->nopen++;
	}
	if (below(&w->r, 2)) {
		f->pos = below(&w->r, f->size + 2048);
		xlseek_check(w, f->fd, f->pos, SEEK_SET, f->pos, f->path);
	}
	n = 1 + below(&w->r, 8192);
	if (f->pos + n > MAXSIZE)
		return 0;
	xwrite(w, f->fd, gen(w, n, f->pos), n, f->path);
	model_write(f, f->pos, scratch, n);
	f->pos += n;
	xlseek_check(w, f->fd, 0, SEEK_CUR, f->pos, f->path);
	return 1;
}

static int op_truncate(struct world *w)
{
	int i = pick_file(w, 0), fd, tmp;
	struct mfile *f;
	size_t n;

	if (i < 0)
		return 0;
	f = &w->f[i];
	n = below(&w->r, 2) ? below(&w->r, f->size + 1) : f->size + below(&w->r, 65536);
	if (n > MAXSIZE)
		n = MAXSIZE / 2;
	if (below(&w->r, 5) == 0) {
		XCALL(w, truncate(P(w, f->path), n), "truncate", f->path);
	} else {
		fd = f->fd >= 0 ? f->fd : wfd(w, f, &tmp);
		tmp = f->fd < 0;
		XCALL(w, ftruncate(fd, n), "ftruncate", f->path);
		if (tmp)
			xclose(w, fd, f->path);
	}
	model_trunc(f, n);
	return 1;
}

/* O_TRUNC reopen and rewrite */
static int op_rewrite(struct world *w)
{
	int i = pick_file(w, 0), fd;
	struct mfile *f;
	size_t n;

	if (i < 0)
		return 0;
	f = &w->f[i];
	close_file(w, f);
	n = pick_size(w);
	fd = xopen(w, f->path, O_RDWR | O_TRUNC, 0);
	f->size = 0;
	xwrite(w, fd, gen(w, n, 0), n, f->path);
	model_write(f, 0, scratch, n);
	if (w->nopen < MAXOPEN && below(&w->r, 2)) {
		f->fd = fd;
		f->fdmode = FD_RDWR;
		f->pos = n;
		w->nopen++;
	} else {
		xclose(w, fd, f->path);
	}
	return 1;
}

static int op_rename(struct world *w)
{
	int i, j = -1, d;
	struct mfile *f;
	char to[PLEN];

	/* half of the time a file that is open, when there is one */
	i = below(&w->r, 2) ? pick_file(w, 1) : -1;
	if (i < 0)
		i = pick_file(w, 0);
	if (i < 0)
		return 0;
	f = &w->f[i];
	if (below(&w->r, 3) == 0) {
		/* over an existing file (closed first: an open file that is unlinked
		 * cannot be reopened by a replay, a known divergence) */
		j = pick_file(w, 0);
		if (j == i)
			j = -1;
	}
	if (j >= 0) {
		close_file(w, &w->f[j]);
		snprintf(to, PLEN, "%s", w->f[j].path);
	} else {
		d = pick_dir(w, 3);
		new_name(w, d, 'r', to);
	}
	if (!w->dry && rename(P(w, f->path), P(w, to)))
		die("rename %s %s: %s", P(w, f->path), P(w, to), strerror(errno));
	if (j >= 0) {
		w->f[j].live = 0;
		w->f[j].size = 0;
	}
	snprintf(f->path, PLEN, "%s", to);
	return 1;
}

static int op_mkdir(struct world *w)
{
	int s = -1, p;

	for (int i = 1; i < MAXD; i++)
		if (!w->d[i].live) {
			s = i;
			break;
		}
	if (s < 0)
		return 0;
	p = pick_dir(w, 2);
	new_name(w, p, 'd', w->d[s].path);
	strcat(w->d[s].path, "/");
	w->d[s].mode = below(&w->r, 3) ? 0755 : 0700;
	w->d[s].depth = w->d[p].depth + 1;
	XCALL(w, mkdir(P(w, w->d[s].path), w->d[s].mode), "mkdir", w->d[s].path);
	w->d[s].live = 1;
	return 1;
}

static int has_prefix(const char *p, const char *pfx)
{
	return !strncmp(p, pfx, strlen(pfx));
}

/* rmdir of a directory without subdirectories: its files and links are unlinked first */
static int op_rmdir(struct world *w)
{
	int idx[MAXD], n = 0, d, i;
	const char *dp;

	for (d = 1; d < MAXD; d++) {
		if (!w->d[d].live)
			continue;
		for (i = 1; i < MAXD; i++)
			if (i != d && w->d[i].live && has_prefix(w->d[i].path, w->d[d].path))
				break;
		if (i == MAXD)
			idx[n++] = d;
	}
	if (!n)
		return 0;
	d = idx[below(&w->r, n)];
	dp = w->d[d].path;
	for (i = 0; i < MAXF; i++) {
		struct mfile *f = &w->f[i];

		if (f->live && has_prefix(f->path, dp)) {
			close_file(w, f);
			XCALL(w, unlink(P(w, f->path)), "unlink", f->path);
			f->live = 0;
			f->size = 0;
		}
	}
	for (i = 0; i < MAXL; i++)
		if (w->l[i].live && has_prefix(w->l[i].path, dp)) {
			XCALL(w, unlink(P(w, w->l[i].path)), "unlink", w->l[i].path);
			w->l[i].live = 0;
		}
	XCALL(w, rmdir(P(w, dp)), "rmdir", dp);
	w->d[d].live = 0;
	return 1;
}

static int op_unlink(struct world *w)
{
	int i = pick_file(w, 0);

	if (i < 0)
		return 0;
	close_file(w, &w->f[i]);
	XCALL(w, unlink(P(w, w->f[i].path)), "unlink", w->f[i].path);
	w->f[i].live = 0;
	w->f[i].size = 0;
	return 1;
}

static int op_fsync(struct world *w)
{
	int i = pick_file(w, 1), data = below(&w->r, 2), fd;
	const char *what = data ? "fdatasync" : "fsync";

	if (i < 0) {
		i = pick_file(w, 0);
		if (i < 0)
			return 0;
		fd = xopen(w, w->f[i].path, O_RDONLY, 0);
		XCALL(w, data ? fdatasync(fd) : fsync(fd), what, w->f[i].path);
		xclose(w, fd, w->f[i].path);
	} else {
		XCALL(w, data ? fdatasync(w->f[i].fd) : fsync(w->f[i].fd), what, w->f[i].path);
	}
	return 1;
}

static int op_close(struct world *w)
{
	int i = pick_file(w, 1);

	if (i < 0)
		return 0;
	close_file(w, &w->f[i]);
	return 1;
}

static int op_symlink(struct world *w)
{
	int s = -1, i, d;
	char buf[PLEN];

	for (i = 0; i < MAXL; i++)
		if (w->l[i].live) {
			if (below(&w->r, 3) == 0) {
				/* check it, then remove it */
				if (!w->dry) {
					ssize_t n = readlink(P(w, w->l[i].path), buf, sizeof(buf) - 1);

					if (n < 0)
						sysdie("readlink", P(w, w->l[i].path));
					buf[n] = 0;
					if (strcmp(buf, w->l[i].target))
						die("readlink %s: \"%s\", expected \"%s\"", P(w, w->l[i].path),
						    buf, w->l[i].target);
				}
				XCALL(w, unlink(P(w, w->l[i].path)), "unlink", w->l[i].path);
				w->l[i].live = 0;
				return 1;
			}
		} else if (s < 0) {
			s = i;
		}
	if (s < 0)
		return 0;
	d = pick_dir(w, 3);
	new_name(w, d, 'l', w->l[s].path);
	snprintf(w->l[s].target, PLEN, "../target-%u/x", below(&w->r, 1000));
	XCALL(w, symlink(w->l[s].target, P(w, w->l[s].path)), "symlink", w->l[s].path);
	w->l[s].live = 1;
	return 1;
}

static int op_verify(struct world *w)
{
	int i = pick_file(w, 0);

	if (i < 0)
		return 0;
	verify_file(w, &w->f[i], below(&w->r, 2));
	return 1;
}

struct op {
	int (*fn)(struct world *);
	int weight;
};
static const struct op parent_ops[] = {
	{ op_create, 14 }, { op_append, 14 }, { op_pwrite, 12 }, { op_seekwrite, 8 },
	{ op_truncate, 7 }, { op_rewrite, 5 }, { op_rename, 9 }, { op_mkdir, 4 },
	{ op_rmdir, 2 }, { op_unlink, 5 }, { op_fsync, 5 }, { op_close, 5 },
	{ op_symlink, 3 }, { op_verify, 7 }, { NULL, 0 },
};
static const struct op child_ops[] = {
	{ op_create, 16 }, { op_append, 12 }, { op_pwrite, 10 }, { op_seekwrite, 6 },
	{ op_truncate, 5 }, { op_rewrite, 4 }, { op_rename, 8 }, { op_mkdir, 3 },
	{ op_unlink, 4 }, { op_fsync, 4 }, { op_close, 4 }, { op_verify, 6 }, { NULL, 0 },
};

static void run_ops(struct world *w, const struct op *ops, int n)
{
	int total = 0, k, tries;

	for (k = 0; ops[k].fn; k++)
		total += ops[k].weight;
	while (n-- > 0) {
		for (tries = 0; tries < 6; tries++) {
			int x = below(&w->r, total);

			for (k = 0; x >= ops[k].weight; k++)
				x -= ops[k].weight;
			if (ops[k].fn(w))
				break;
		}
		w->ops++;
	}
}

static void world_init(struct world *w, uint64_t seed, int dry)
{
	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->r.s = seed;
	w->dry = dry;
	w->d[0].live = 1;
	w->d[0].mode = 0755;
	for (int i = 0; i < MAXF; i++)
		w->f[i].fd = -1;
}

static void world_free(struct world *w)
{
	for (int i = 0; i < MAXF; i++)
		free(w->f[i].data);
}

/* every file in full, every directory listed */
static void verify_all(struct world *w)
{
	for (int i = 0; i < MAXF; i++)
		if (w->f[i].live)
			verify_file(w, &w->f[i], 1);
	for (int i = 0; i < MAXD; i++)
		if (w->d[i].live)
			verify_dir(w, w->d[i].path);
	for (int i = 0; i < MAXL; i++) {
		char buf[PLEN];
		ssize_t n;

		if (!w->l[i].live || w->dry)
			continue;
		n = readlink(P(w, w->l[i].path), buf, sizeof(buf) - 1);
		if (n < 0)
			sysdie("readlink", P(w, w->l[i].path));
		buf[n] = 0;
		if (strcmp(buf, w->l[i].target))
			die("readlink %s: \"%s\", expected \"%s\"", P(w, w->l[i].path), buf, w->l[i].target);
	}
}

/* ---- children ------------------------------------------------------------------------ */
static uint64_t kid_seed(uint64_t seed, int round, int k)
{
	return mix64(seed ^ mix64(0x6b6964ULL + (uint64_t)round * 16 + k));
}

/* a child's workload in its subdirectory SUB (made by the child); in a dry run the model only */
static void kid_work(struct world *w, const char *sub)
{
	int n = 8 + below(&w->r, 6);

	if (!w->dry) {
		if (mkdir(sub, 0755))
			sysdie("mkdir", sub);
		if (chdir(sub))
			sysdie("chdir", sub);
	}
	run_ops(w, child_ops, n);
	verify_all(w);
	for (int i = 0; i < MAXF; i++)
		close_file(w, &w->f[i]);
}

/* ---- main --------------------------------------------------------------------------- */
static int manifest(const char *dir)
{
	struct lines l = { 0 };

	walk(dir, "", &l);
	lines_sort(&l);
	for (size_t i = 0; i < l.n; i++)
		printf("%s\n", l.v[i]);
	lines_free(&l);
	if (fflush(stdout) || ferror(stdout))
		die("writing the manifest to stdout failed");
	return 0;
}

/* mkdir -p of DIR's parents, then DIR itself (which must be new) */
static void make_dir(char *dir)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			sysdie("mkdir", dir);
		*p = '/';
	}
	if (mkdir(dir, 0755))
		sysdie("mkdir", dir);
}

int main(int argc, char **argv)
{
	static struct world w, kw;
	struct world *kids = NULL;
	int rounds = 30, nkids = 0, r, k, i;
	uint64_t seed = 0xcbf29ce484222325ULL;
	struct lines want = { 0 }, got = { 0 };
	char hex[65];
	struct tt_sha256 s;

	if (argc == 3 && !strcmp(argv[1], "--manifest"))
		return manifest(argv[2]);
	if (argc < 3 || argc > 4 || (argc == 4 && (rounds = atoi(argv[3])) <= 0)) {
		fprintf(stderr, "usage: torture SEED DIR [ROUNDS]\n       torture --manifest DIR\n");
		return 2;
	}
	for (const char *p = argv[1]; *p; p++)
		seed = (seed ^ (unsigned char)*p) * 0x100000001b3ULL;
	umask(022);
	scratch = xrealloc(NULL, SCRATCH);
	readbuf = xrealloc(NULL, SCRATCH);
	make_dir(argv[2]);
	if (chdir(argv[2]))
		sysdie("chdir", argv[2]);
	world_init(&w, mix64(seed), 0);

	for (r = 0; r < rounds; r++) {
		cur_round = r;
		run_ops(&w, parent_ops, 6 + below(&w.r, 8));
		if (r > 0 && below(&w.r, 4) == 0 && w.nkids + 2 <= 64) {
			int n = 1 + below(&w.r, 2);
			pid_t pids[2];

			fflush(NULL);
			for (k = 0; k < n; k++) {
				snprintf(w.kids[w.nkids + k], PLEN, "k%d_%d", r, k);
				pids[k] = fork();
				if (pids[k] < 0)
					sysdie("fork", "");
				if (pids[k] == 0) {
					is_child = 1;
					snprintf(who, sizeof(who), "torture child %d.%d", r, k);
					world_init(&kw, kid_seed(seed, r, k), 0);
					kid_work(&kw, w.kids[w.nkids + k]);
					_exit(0);
				}
			}
			for (k = 0; k < n; k++) {
				int st;

				if (waitpid(pids[k], &st, 0) != pids[k])
					sysdie("waitpid", w.kids[w.nkids + k]);
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					die("child %s: %s %d", w.kids[w.nkids + k],
					    WIFEXITED(st) ? "exit status" : "killed by signal",
					    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				/* what it must have left: the same workload, dry */
				kids = xrealloc(kids, (nkids + 1) * sizeof(*kids));
				world_init(&kids[nkids], kid_seed(seed, r, k), 1);
				kid_work(&kids[nkids], w.kids[w.nkids + k]);
				kids[nkids].dry = 0;
				snprintf(kids[nkids].prefix, PLEN, "%s/", w.kids[w.nkids + k]);
				verify_all(&kids[nkids]);
				nkids++;
			}
			w.nkids += n;
		}
		/* read back two files and list a directory */
		for (k = 0; k < 2; k++)
			op_verify(&w);
		verify_dir(&w, w.d[pick_dir(&w, 3)].path);
	}
	cur_round = rounds;
	for (i = 0; i < MAXF; i++)
		close_file(&w, &w.f[i]);

	/* the tree on disk is exactly the model */
	model_manifest(&w, "", &want);
	for (k = 0; k < nkids; k++) {
		lines_add(&want, w.kids[k], 'd', 0755, -1, "-");
		model_manifest(&kids[k], kids[k].prefix, &want);
	}
	lines_sort(&want);
	walk(".", "", &got);
	lines_sort(&got);
	for (size_t a = 0; a < want.n || a < got.n; a++)
		if (a >= want.n || a >= got.n || strcmp(want.v[a], got.v[a])) {
			/* a detailed message first (which file, from which offset) */
			verify_all(&w);
			for (k = 0; k < nkids; k++)
				verify_all(&kids[k]);
			die("manifest differs from the model at line %zu: disk \"%s\", model \"%s\"", a + 1,
			    a < got.n ? got.v[a] : "(end)", a < want.n ? want.v[a] : "(end)");
		}

	tt_sha256_init(&s);
	unsigned long long bytes = w.bytes, ops = w.ops, files = 0, size = 0;
	for (k = 0; k < nkids; k++)
		bytes += kids[k].bytes, ops += kids[k].ops;
	for (size_t a = 0; a < want.n; a++) {
		tt_sha256_update(&s, want.v[a], strlen(want.v[a]));
		tt_sha256_update(&s, "\n", 1);
		if (strchr(want.v[a], ' ')[1] == 'f') {
			files++;
			size += strtoull(strchr(strchr(strchr(want.v[a], ' ') + 1, ' ') + 1, ' ') + 1, NULL, 10);
		}
	}
	sha_hex(&s, hex);
	printf("torture seed=%s rounds=%d children=%d ops=%llu bytes_written=%llu\n", argv[1], rounds,
	       nkids, ops, bytes);
	printf("tree: entries=%zu files=%llu bytes=%llu manifest_sha256=%s\n", want.n, files, size, hex);
	lines_free(&want);
	lines_free(&got);
	world_free(&w);
	for (k = 0; k < nkids; k++)
		world_free(&kids[k]);
	free(kids);
	if (fflush(stdout) || ferror(stdout))
		die("writing the summary to stdout failed");
	return 0;
}
