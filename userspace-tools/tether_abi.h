/* SPDX-License-Identifier: GPL-2.0 */
/* Generated from rust/src/calls.rs and rust/src/device.rs by their host tests
 * (TETHER_BLESS=1 cargo test in rust/): do not edit. */
#ifndef TETHER_ABI_H
#define TETHER_ABI_H
#include <stdint.h>

#define TETHER_REQ_HEAD 0x38u
#define TETHER_BUF_DESC_LEN 0x8u
#define TETHER_REP_HEAD 0x10u
#define TETHER_MAX_BUFS 0x4u
#define TETHER_REPLY_SYNCED_ALL 0x1u
#define TETHER_DIR_IN 0x1u
#define TETHER_DIR_OUT 0x2u
#define TETHER_DIR_RET 0x4u
#define TETHER_CALL_APPEND 0xfffffffeu
#define TETHER_CALL_GETDENTS 0xfffffffdu
#define TETHER_CALL_REOPEN 0xfffffffcu
#define TETHER_DEV_FD 0x3ffu
#define TETHER_ROOT_FD 0x3feu
#define TETHER_OP_CALL 0x0u
#define TETHER_OP_FORK 0x1u
#define TETHER_OP_SPAWNER 0x2u
#define TETHER_OP_THREAD 0x3u
#define TETHER_OP_LANE_END 0x4u
#define TETHER_LANE_MAIN 0x0u
#define TETHER_LANE_SPAWNER 0xffffffffu
#define TETHER_SHADOW_NEXT 0xc0385402u
#define TETHER_SHADOW_REPLY 0x40205403u
#define TETHER_SHADOW_KEEPER 0x40085404u
#define TETHER_SHADOW_REPLY_NEXT 0xc0585405u
#define TETHER_MAX_BODY 0x100000u

/* What a call makes durable once it succeeded (rust/src/calls.rs, Effect). */
enum tether_effect { TETHER_NONE, TETHER_COMMITS, TETHER_COMMITS_IF_CREATES,
		     TETHER_SYNCS_ALL, TETHER_SYNCS_FILE };

struct tether_call { uint32_t nr; uint8_t effect; const char *name; };

/* Every call a shadow runs; the server module has checked each request's
 * buffers against the same table before the shadow sees it. */
static const struct tether_call tether_calls[] = {
	{ 0u, TETHER_NONE, "read" },
	{ 1u, TETHER_NONE, "write" },
	{ 2u, TETHER_COMMITS_IF_CREATES, "open" },
	{ 3u, TETHER_NONE, "close" },
	{ 4u, TETHER_NONE, "stat" },
	{ 5u, TETHER_NONE, "fstat" },
	{ 6u, TETHER_NONE, "lstat" },
	{ 8u, TETHER_NONE, "lseek" },
	{ 17u, TETHER_NONE, "pread64" },
	{ 18u, TETHER_NONE, "pwrite64" },
	{ 21u, TETHER_NONE, "access" },
	{ 72u, TETHER_NONE, "fcntl" },
	{ 73u, TETHER_NONE, "flock" },
	{ 74u, TETHER_SYNCS_FILE, "fsync" },
	{ 75u, TETHER_SYNCS_FILE, "fdatasync" },
	{ 76u, TETHER_COMMITS, "truncate" },
	{ 77u, TETHER_COMMITS, "ftruncate" },
	{ 79u, TETHER_NONE, "getcwd" },
	{ 80u, TETHER_NONE, "chdir" },
	{ 81u, TETHER_NONE, "fchdir" },
	{ 82u, TETHER_COMMITS, "rename" },
	{ 83u, TETHER_COMMITS, "mkdir" },
	{ 84u, TETHER_COMMITS, "rmdir" },
	{ 85u, TETHER_COMMITS, "creat" },
	{ 86u, TETHER_COMMITS, "link" },
	{ 87u, TETHER_COMMITS, "unlink" },
	{ 88u, TETHER_COMMITS, "symlink" },
	{ 89u, TETHER_NONE, "readlink" },
	{ 90u, TETHER_COMMITS, "chmod" },
	{ 91u, TETHER_COMMITS, "fchmod" },
	{ 92u, TETHER_COMMITS, "chown" },
	{ 93u, TETHER_COMMITS, "fchown" },
	{ 94u, TETHER_COMMITS, "lchown" },
	{ 95u, TETHER_NONE, "umask" },
	{ 133u, TETHER_COMMITS, "mknod" },
	{ 137u, TETHER_NONE, "statfs" },
	{ 138u, TETHER_NONE, "fstatfs" },
	{ 188u, TETHER_COMMITS, "setxattr" },
	{ 189u, TETHER_COMMITS, "lsetxattr" },
	{ 190u, TETHER_COMMITS, "fsetxattr" },
	{ 191u, TETHER_NONE, "getxattr" },
	{ 192u, TETHER_NONE, "lgetxattr" },
	{ 193u, TETHER_NONE, "fgetxattr" },
	{ 194u, TETHER_NONE, "listxattr" },
	{ 195u, TETHER_NONE, "llistxattr" },
	{ 196u, TETHER_NONE, "flistxattr" },
	{ 197u, TETHER_COMMITS, "removexattr" },
	{ 198u, TETHER_COMMITS, "lremovexattr" },
	{ 199u, TETHER_COMMITS, "fremovexattr" },
	{ 257u, TETHER_COMMITS_IF_CREATES, "openat" },
	{ 258u, TETHER_COMMITS, "mkdirat" },
	{ 259u, TETHER_COMMITS, "mknodat" },
	{ 260u, TETHER_COMMITS, "fchownat" },
	{ 262u, TETHER_NONE, "newfstatat" },
	{ 263u, TETHER_COMMITS, "unlinkat" },
	{ 264u, TETHER_COMMITS, "renameat" },
	{ 265u, TETHER_COMMITS, "linkat" },
	{ 266u, TETHER_COMMITS, "symlinkat" },
	{ 267u, TETHER_NONE, "readlinkat" },
	{ 268u, TETHER_COMMITS, "fchmodat" },
	{ 269u, TETHER_NONE, "faccessat" },
	{ 277u, TETHER_NONE, "sync_file_range" },
	{ 280u, TETHER_COMMITS, "utimensat" },
	{ 285u, TETHER_COMMITS, "fallocate" },
	{ 292u, TETHER_NONE, "dup3" },
	{ 306u, TETHER_SYNCS_ALL, "syncfs" },
	{ 316u, TETHER_COMMITS, "renameat2" },
	{ 326u, TETHER_COMMITS, "copy_file_range" },
	{ 332u, TETHER_NONE, "statx" },
	{ 437u, TETHER_COMMITS_IF_CREATES, "openat2" },
	{ 439u, TETHER_NONE, "faccessat2" },
	{ 452u, TETHER_COMMITS, "fchmodat2" },
	{ 4294967294u, TETHER_NONE, "append" },
	{ 4294967293u, TETHER_NONE, "getdents" },
	{ 4294967292u, TETHER_NONE, "reopen" },
};

/* The device's ioctl arguments (rust/src/device.rs). */
struct tether_next_args {
	uint64_t token;	/* in */
	uint64_t buf;	/* in */
	uint32_t cap;	/* in */
	uint32_t len;	/* out */
	uint64_t seq;	/* out */
	uint32_t op;	/* out: TETHER_OP_* */
	uint32_t fork_pid;	/* out: OP_FORK */
	uint64_t fork_token;	/* out: OP_FORK */
	uint32_t lane;	/* in */
	uint32_t failed_lane;	/* in */
};
_Static_assert(sizeof(struct tether_next_args) == 56, "next_args");

struct tether_reply_args {
	uint64_t token;
	uint64_t buf;
	uint32_t len;
	uint32_t signals;
	uint64_t seq;
};
_Static_assert(sizeof(struct tether_reply_args) == 32, "reply_args");

struct tether_reply_next_args {
	struct tether_reply_args reply;
	struct tether_next_args next;
};
_Static_assert(sizeof(struct tether_reply_next_args) == 88, "reply_next_args");

#endif
