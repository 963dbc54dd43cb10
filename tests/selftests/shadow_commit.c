// SPDX-License-Identifier: GPL-2.0
/*
 * The shadow's commit rules (userspace-tools/tether-shadow.c, look_before/commit; DESIGN §7
 * "Unflushed data"), on the host: each variant sets up a directory, runs one committed call
 * the way a shadow does (look at the names, make the call, commit it) and checks whether
 * the commit synced the whole export (TETHER_REPLY_SYNCED_ALL: the client then drops every
 * write it retained) or only what the call changed (then the client drops what it retained
 * for the names an unlink or a rename took, so the file's data must be on disk).
 */
#define TETHER_SHADOW_NO_MAIN
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  /* the shadow's loop is not run here */
#include "../../userspace-tools/tether-shadow.c"
#pragma GCC diagnostic pop

#include <ftw.h>
#include "kselftest_harness.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

FIXTURE(commit) {
	char dir[64];
};

FIXTURE_VARIANT(commit) {
	const char *setup;   /* a shell command run in the directory first */
	uint32_t nr;
	const char *p1, *p2;
	uint64_t arg;        /* open flags, renameat2 flags */
	int whole;           /* the commit must sync the whole export */
};

FIXTURE_VARIANT_ADD(commit, create_new) {
	.setup = "", .nr = SYS_openat, .p1 = "f", .arg = O_CREAT | O_WRONLY | O_TRUNC, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, create_existing_no_trunc) {
	.setup = "echo data >f", .nr = SYS_openat, .p1 = "f", .arg = O_CREAT | O_WRONLY, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, truncating_open_of_data) {
	.setup = "echo data >f", .nr = SYS_openat, .p1 = "f", .arg = O_CREAT | O_WRONLY | O_TRUNC, .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, truncating_open_of_empty) {
	.setup = ": >f", .nr = SYS_openat, .p1 = "f", .arg = O_WRONLY | O_TRUNC, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, creat_over_data) {
	.setup = "echo data >f", .nr = SYS_creat, .p1 = "f", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, truncate) {
	.setup = "echo data >f", .nr = SYS_truncate, .p1 = "f", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, unlink) {
	.setup = "echo data >f", .nr = SYS_unlink, .p1 = "f", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, unlink_of_a_hard_link) {
	.setup = "echo data >f && ln f g", .nr = SYS_unlink, .p1 = "f", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, unlink_of_a_symlink) {
	.setup = "echo data >f && ln -s f l", .nr = SYS_unlink, .p1 = "l", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, rename) {
	.setup = "echo data >f", .nr = SYS_rename, .p1 = "f", .p2 = "g", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, rename_over_a_file) {
	.setup = "echo data >f && echo old >g", .nr = SYS_rename, .p1 = "f", .p2 = "g", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, rename_over_a_hard_link) {
	.setup = "echo data >f && echo old >g && ln g h", .nr = SYS_rename, .p1 = "f", .p2 = "g", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, rename_over_a_symlink) {
	.setup = "echo data >f && ln -s f l", .nr = SYS_rename, .p1 = "f", .p2 = "l", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, rename_exchange) {
	.setup = "echo data >f && echo old >g", .nr = SYS_renameat2, .p1 = "f", .p2 = "g",
	.arg = RENAME_EXCHANGE, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, rename_of_a_directory) {
	.setup = "mkdir d && echo data >d/f", .nr = SYS_rename, .p1 = "d", .p2 = "e", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, rename_of_a_symlink) {
	.setup = "echo data >f && ln -s f l", .nr = SYS_rename, .p1 = "l", .p2 = "m", .whole = 1,
};
FIXTURE_VARIANT_ADD(commit, mkdir) {
	.setup = "", .nr = SYS_mkdir, .p1 = "d", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, rmdir) {
	.setup = "mkdir d", .nr = SYS_rmdir, .p1 = "d", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, symlink) {
	.setup = "", .nr = SYS_symlink, .p1 = "f", .p2 = "l", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, link) {
	.setup = "echo data >f", .nr = SYS_link, .p1 = "f", .p2 = "g", .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, mkfifo) {
	.setup = "", .nr = SYS_mknod, .p1 = "p", .arg = S_IFIFO | 0644, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, chmod) {
	.setup = "echo data >f", .nr = SYS_chmod, .p1 = "f", .arg = 0600, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, chmod_of_a_fifo) {
	.setup = "mkfifo p", .nr = SYS_chmod, .p1 = "p", .arg = 0600, .whole = 0,
};
FIXTURE_VARIANT_ADD(commit, lchown_of_a_symlink) {
	.setup = "ln -s f l", .nr = SYS_lchown, .p1 = "l", .whole = 0,
};

FIXTURE_SETUP(commit)
{
	char cmd[256];

	strcpy(self->dir, "/tmp/shadow-commit-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, chdir(self->dir));
	/* The export root the commit syncs as a whole. */
	ASSERT_EQ(ROOT_FD, open_at(".", ROOT_FD));
	snprintf(cmd, sizeof(cmd), "%s", variant->setup);
	if (*cmd)
		ASSERT_EQ(0, system(cmd));
}

FIXTURE_TEARDOWN(commit)
{
	close(ROOT_FD);
	if (chdir("/") == 0)
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_F(commit, synced_what_it_must)
{
	const uint64_t cwd = (uint64_t)(int64_t)AT_FDCWD;
	const uint64_t p1 = (uintptr_t)variant->p1, p2 = (uintptr_t)variant->p2;
	const struct tether_call *c = call_of(variant->nr);
	uint64_t a[6] = { 0 };
	struct before b;
	uint32_t flags = 0;
	int64_t ret;

	switch (variant->nr) {
	case SYS_openat: a[0] = cwd; a[1] = p1; a[2] = variant->arg; a[3] = 0644; break;
	case SYS_creat: a[0] = p1; a[1] = 0644; break;
	case SYS_truncate: a[0] = p1; a[1] = 0; break;
	case SYS_mkdir: a[0] = p1; a[1] = 0755; break;
	case SYS_mknod: a[0] = p1; a[1] = variant->arg; a[2] = 0; break;
	case SYS_chmod: a[0] = p1; a[1] = variant->arg; break;
	case SYS_lchown: a[0] = p1; a[1] = getuid(); a[2] = getgid(); break;
	case SYS_renameat2: a[0] = cwd; a[1] = p1; a[2] = cwd; a[3] = p2; a[4] = variant->arg; break;
	default: a[0] = p1; a[1] = p2; break;  /* unlink, rmdir, rename, symlink, link */
	}
	ASSERT_NE(NULL, c);
	ASSERT_TRUE(commits(c, a));
	look_before(variant->nr, a, &b);
	ret = syscall(variant->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	ASSERT_LE(0, ret) TH_LOG("%s: %s", c->name, strerror(errno));
	ASSERT_EQ(0, commit(variant->nr, a, ret, &b, &flags));
	EXPECT_EQ(variant->whole, !!(flags & TETHER_REPLY_SYNCED_ALL));
	if (variant->nr == SYS_openat || variant->nr == SYS_creat)
		close((int)ret);
}

TEST_HARNESS_MAIN
