// SPDX-License-Identifier: GPL-2.0
/*
 * Crash-survival tests against tether_server.ko (issue 5, server side), run in the client
 * VM of tests/remote.sh (the server runs shadows there): the reply cache answers a re-sent
 * request without running it again, a session survives a lost connection and its client
 * instance (only that one) resumes it with its shadow's state intact, and the flusher acks
 * durability with SERVER_FLUSHED, to clients that announced the kind only.
 * Server: TETHER_SERVER_CID (4), TETHER_PORT (7777), TETHER_FLUSH_MS (1000).
 *
 * The call used is umask(2): harmless, and its result tells whether it ran again (a second
 * run returns the mask the first one set).
 */
#include "tether_wire.h"
#include "kselftest_harness.h"

#define SERVER_CID ((unsigned int)tt_env("TETHER_SERVER_CID", 4))
#define PORT ((unsigned int)tt_env("TETHER_PORT", 7777))
#define FLUSH_MS ((int)tt_env("TETHER_FLUSH_MS", 1000))
#define NR_UMASK 95

/* A fresh client instance id for this test. */
static uint64_t instance_id(int salt)
{
	return 0x1e5700000000000ull ^ ((uint64_t)getpid() << 8) ^ (uint64_t)salt ^ tt_now_ns();
}

/* Connects and handshakes with the resume fields; 0 or -errno. */
static int connect2(uint32_t resume, uint64_t instance, uint64_t kinds, struct tt_welcome *w)
{
	uint8_t body[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	ssize_t n;
	int fd = tt_connect(SERVER_CID, PORT);

	if (fd < 0)
		return fd;
	tt_hello_put2(body, 1, 1, 0x7e57000000000000ull | (uint64_t)getpid(), TT_MAX_FRAME,
		      tt_env("TETHER_HEARTBEAT_MS", 500), kinds, resume, instance);
	n = tt_send_frame(fd, TT_HELLO, 0, 0, 1, body, 40);
	if (n >= 0)
		n = tt_recv_frame(fd, &h, body, sizeof(body), 10000);
	if (n >= 0 && (h.kind != TT_WELCOME || h.seq != 1 || !tt_welcome_get(body, n, w)))
		n = -EPROTO;
	if (n < 0) {
		close(fd);
		return n;
	}
	return fd;
}

/* Sends call nr(args), without buffers, as request seq of process rpid. */
static int send_call(int fd, uint32_t session, uint32_t rpid, uint64_t seq, uint32_t nr,
		     const uint64_t args[6])
{
	uint8_t f[TT_HDR_LEN + 56];
	size_t n = tt_syscall_put(f + TT_HDR_LEN, nr, args);

	tt_hdr_put(f, TT_CLIENT_SYSTEM_CALL, 0, n, session, seq);
	tt_put32(f + 20, rpid);
	return tt_send(fd, f, sizeof(f));
}

/* Sends umask(mask) as request seq of process rpid. */
static int send_umask(int fd, uint32_t session, uint32_t rpid, uint64_t seq, uint64_t mask)
{
	uint64_t args[6] = { mask };

	return send_call(fd, session, rpid, seq, NR_UMASK, args);
}

/*
 * Waits for the SERVER_REPLY of seq (body into rep, length returned); SERVER_FLUSHED
 * frames on the way are skipped and counted in *flushed (may be NULL).
 */
static ssize_t wait_reply(int fd, uint64_t seq, uint8_t *rep, size_t cap, int *flushed)
{
	struct tt_hdr h;

	for (;;) {
		ssize_t n = tt_recv_frame(fd, &h, rep, cap, 20000);

		if (n < 0)
			return n;
		if (h.kind == TT_SERVER_FLUSHED) {
			if (flushed)
				(*flushed)++;
			continue;
		}
		if (h.kind != TT_SERVER_REPLY || h.seq != seq)
			return -EPROTO;
		return n;
	}
}

/* umask(mask) as seq: its return value, or INT64_MIN on failure. */
static int64_t do_umask(int fd, uint32_t session, uint64_t seq, uint64_t mask, uint8_t *rep,
			ssize_t *len)
{
	int64_t ret;
	ssize_t n;

	if (send_umask(fd, session, getpid(), seq, mask) < 0)
		return INT64_MIN;
	n = wait_reply(fd, seq, rep, 256, NULL);
	if (len)
		*len = n;
	if (n < 0 || !tt_reply_ret(rep, n, &ret))
		return INT64_MIN;
	return ret;
}

/* Ends the session for good (ERROR goodbye), then closes. */
static void goodbye(int fd, uint32_t session)
{
	tt_goodbye(fd, session);
	close(fd);
}

/* Shadows start through a user-mode helper: slow under TCG; every case gets 60 s. */
FIXTURE(srv) {
	int unused;
};
FIXTURE_SETUP(srv) {}
FIXTURE_TEARDOWN(srv) {}

TEST_F_TIMEOUT(srv, duplicate_request_runs_once, 60)
{
	uint8_t r1[256], r2[256];
	struct tt_welcome w;
	ssize_t n1, n2;
	int64_t first, again, now;
	int fd = connect2(0, instance_id(1), TT_ALL_KINDS, &w);

	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	EXPECT_EQ(0, w.flags & TT_W_RESUMED);
	first = do_umask(fd, w.session, 10, 0123, r1, &n1);
	ASSERT_NE(INT64_MIN, first);
	ASSERT_NE(0123, first) TH_LOG("the shadow's umask is already 0123: inconclusive");
	/* The same seq again: answered from the cache, byte for byte, not run again (a second
	 * run would return 0123). */
	again = do_umask(fd, w.session, 10, 0123, r2, &n2);
	EXPECT_EQ(first, again);
	ASSERT_EQ(n1, n2);
	EXPECT_EQ(0, memcmp(r1, r2, n1));
	/* And the mask was set exactly by the first run. */
	now = do_umask(fd, w.session, 11, first, r2, NULL);
	EXPECT_EQ(0123, now);
	goodbye(fd, w.session);
}

TEST_F_TIMEOUT(srv, session_resumes_after_lost_connection, 60)
{
	uint64_t inst = instance_id(2);
	uint8_t r1[256], r2[256];
	struct tt_welcome w, w2;
	ssize_t n1, n2;
	int64_t first, now;
	int fd = connect2(0, inst, TT_ALL_KINDS, &w), fd2;

	ASSERT_LE(0, fd);
	first = do_umask(fd, w.session, 20, 0135, r1, &n1);
	ASSERT_NE(INT64_MIN, first);
	/* The connection breaks (no goodbye). */
	close(fd);
	usleep(200 * 1000);
	fd2 = connect2(w.session, inst, TT_ALL_KINDS, &w2);
	ASSERT_LE(0, fd2) TH_LOG("reconnect: %s", strerror(-fd2));
	EXPECT_EQ(w.session, w2.session);
	EXPECT_EQ(TT_W_RESUMED, w2.flags & TT_W_RESUMED);
	EXPECT_EQ(w.boot_verifier, w2.boot_verifier);
	/* Same shadow: it still has the mask set before the break. */
	now = do_umask(fd2, w2.session, 21, first, r2, NULL);
	EXPECT_EQ(0135, now);
	/* A request re-sent after the resume is answered from the cache. */
	EXPECT_EQ(first, do_umask(fd2, w2.session, 20, 0135, r2, &n2));
	ASSERT_EQ(n1, n2);
	EXPECT_EQ(0, memcmp(r1, r2, n1));
	goodbye(fd2, w2.session);
}

TEST_F_TIMEOUT(srv, resume_needs_the_same_client_instance, 60)
{
	uint64_t inst = instance_id(3);
	struct tt_welcome w, w2, w3;
	uint8_t r[256];
	int fd = connect2(0, inst, TT_ALL_KINDS, &w), fd2, fd3;

	ASSERT_LE(0, fd);
	ASSERT_NE(INT64_MIN, do_umask(fd, w.session, 30, 0246, r, NULL));
	close(fd);
	usleep(200 * 1000);
	/* Another instance naming the session gets a new one. */
	fd2 = connect2(w.session, inst + 1, TT_ALL_KINDS, &w2);
	ASSERT_LE(0, fd2);
	EXPECT_NE(w.session, w2.session);
	EXPECT_EQ(0, w2.flags & TT_W_RESUMED);
	/* Its process there has a fresh shadow (not the 0246 one). */
	EXPECT_NE(0246, do_umask(fd2, w2.session, 31, 022, r, NULL));
	goodbye(fd2, w2.session);
	/* The right instance still gets the session back; then ends it. */
	fd3 = connect2(w.session, inst, TT_ALL_KINDS, &w3);
	ASSERT_LE(0, fd3);
	EXPECT_EQ(w.session, w3.session);
	EXPECT_EQ(TT_W_RESUMED, w3.flags & TT_W_RESUMED);
	goodbye(fd3, w3.session);
}

TEST_F_TIMEOUT(srv, server_acks_durability, 60)
{
	struct tt_welcome w;
	struct tt_flushed f = { 0 };
	uint8_t body[256];
	struct tt_hdr h;
	uint64_t end;
	int got = 0;
	int fd = connect2(0, instance_id(4), TT_ALL_KINDS, &w);

	ASSERT_LE(0, fd);
	ASSERT_NE(INT64_MIN, do_umask(fd, w.session, 40, 022, body, NULL));
	ASSERT_NE(INT64_MIN, do_umask(fd, w.session, 41, 022, body, NULL));
	/* Within a few flush intervals: SERVER_FLUSHED covering seq 41, same verifier. */
	end = tt_now_ns() + (uint64_t)FLUSH_MS * 5 * 1000000ull + 2000000000ull;
	while (tt_now_ns() < end && f.up_to_seq < 41) {
		ssize_t n = tt_recv_frame(fd, &h, body, sizeof(body), 1000);

		if (n == -ETIMEDOUT)
			continue;
		ASSERT_LE(0, n) TH_LOG("receive: %s", strerror(-n));
		ASSERT_EQ(TT_SERVER_FLUSHED, h.kind) TH_LOG("unexpected kind %u", h.kind);
		ASSERT_TRUE(tt_flushed_get(body, n, &f));
		EXPECT_EQ(w.session, h.session);
		EXPECT_EQ(w.boot_verifier, f.boot_verifier);
		got++;
	}
	EXPECT_LE(41, f.up_to_seq) TH_LOG("%d SERVER_FLUSHED frames, last up_to_seq %llu", got,
					   (unsigned long long)f.up_to_seq);
	goodbye(fd, w.session);
}

/* A client before crash recovery (28-byte HELLO, kinds 1..12) never gets SERVER_FLUSHED. */
TEST_F_TIMEOUT(srv, no_flushed_for_old_clients, 60)
{
	struct tt_welcome w;
	uint8_t body[256];
	struct tt_hdr h;
	uint64_t end;
	int fd = tt_connect(SERVER_CID, PORT);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, tt_handshake(fd, TT_MAX_FRAME, &w));
	ASSERT_NE(INT64_MIN, do_umask(fd, w.session, 50, 022, body, NULL));
	end = tt_now_ns() + (uint64_t)FLUSH_MS * 3 * 1000000ull;
	while (tt_now_ns() < end) {
		ssize_t n = tt_recv_frame(fd, &h, body, sizeof(body), 500);

		if (n == -ETIMEDOUT)
			continue;
		ASSERT_LE(0, n);
		EXPECT_NE(TT_SERVER_FLUSHED, h.kind);
	}
	close(fd);
}

/*
 * With TETHER_LEAVE_SESSION=1 (tests/vm/remote-client.sh, just before the client module
 * unloads): leaves two sessions waiting for a resume that never comes, one with a shadow,
 * one without, for tests/vm/remote-server.sh (which ends the first on request and unloads
 * the module with the second). Skipped otherwise.
 */
/*
 * The server checks every call against its call table (rust/src/calls.rs) before a shadow
 * sees it: numbers no shadow runs (the module's own fork, io_uring), a pointer argument
 * without its buffer (the shadow would use the client's number as an address), a shadow
 * call without its output buffer, an fd the shadow keeps for itself. Each is refused with
 * Linux's errno for it, and the shadow goes on serving.
 */
FIXTURE(calls) {
	int fd;
	struct tt_welcome w;
};
FIXTURE_VARIANT(calls) {
	uint32_t nr;
	uint64_t args[6];
	int64_t ret;
};
FIXTURE_VARIANT_ADD(calls, fork_pseudo_call) {
	.nr = 0xffffffffu, .args = { 1, 2 }, .ret = -ENOSYS };
FIXTURE_VARIANT_ADD(calls, io_uring_setup) { .nr = 425, .args = { 8, 0 }, .ret = -ENOSYS };
FIXTURE_VARIANT_ADD(calls, unknown_number) { .nr = 9999, .ret = -ENOSYS };
FIXTURE_VARIANT_ADD(calls, pread_raw_pointer) {
	.nr = 17, .args = { 0, 0x10, 8, 0 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, fstat_raw_pointer) { .nr = 5, .args = { 0, 0x1000 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, getcwd_raw_pointer) { .nr = 79, .args = { 0x10, 4096 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, append_raw_pointer) {
	.nr = 0xfffffffeu, .args = { 0, 0, 0, 0x10 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, getdents_raw_pointer) {
	.nr = 0xfffffffdu, .args = { 0, 0, 0, 0x10 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, reopen_raw_pointer) {
	.nr = 0xfffffffcu, .args = { (uint64_t)-100, 0x10, 1 }, .ret = -EINVAL };
FIXTURE_VARIANT_ADD(calls, close_device_fd) { .nr = 3, .args = { 1023 }, .ret = -EBADF };
FIXTURE_VARIANT_ADD(calls, dup_over_root_fd) { .nr = 292, .args = { 0, 1022 }, .ret = -EBADF };
FIXTURE_VARIANT_ADD(calls, fcntl_setown) { .nr = 72, .args = { 0, 8, 1 }, .ret = -EINVAL };
/* A null pointer is fine: the call itself decides (fstat(0, NULL): EFAULT, as locally). */
FIXTURE_VARIANT_ADD(calls, fstat_null) { .nr = 5, .args = { 0, 0 }, .ret = -EFAULT };

FIXTURE_SETUP(calls)
{
	self->fd = connect2(0, instance_id(8), TT_ALL_KINDS, &self->w);
	ASSERT_LE(0, self->fd) TH_LOG("connect: %s", strerror(-self->fd));
}
FIXTURE_TEARDOWN(calls)
{
	if (self->fd >= 0)
		goodbye(self->fd, self->w.session);
}

TEST_F_TIMEOUT(calls, refused_before_the_shadow, 60)
{
	uint8_t rep[256];
	int64_t ret;
	ssize_t n;

	/* A shadow first, so that a call reaching it would be served. */
	ASSERT_NE(INT64_MIN, do_umask(self->fd, self->w.session, 1, 022, rep, NULL));
	ASSERT_LE(0, send_call(self->fd, self->w.session, getpid(), 2, variant->nr, variant->args));
	n = wait_reply(self->fd, 2, rep, sizeof(rep), NULL);
	ASSERT_LE(0, n);
	ASSERT_TRUE(tt_reply_ret(rep, n, &ret));
	EXPECT_EQ(variant->ret, ret);
	/* The shadow is alive and serves the next call (its mask is still 022). */
	EXPECT_EQ(022, do_umask(self->fd, self->w.session, 3, 077, rep, NULL));
}

TEST_F_TIMEOUT(srv, leave_detached_session, 60)
{
	struct tt_welcome w, w2;
	uint8_t r[256];
	int fd, fd2;

	if (!tt_env("TETHER_LEAVE_SESSION", 0))
		SKIP(return, "only with TETHER_LEAVE_SESSION=1");
	fd = connect2(0, instance_id(6), TT_ALL_KINDS, &w);
	ASSERT_LE(0, fd);
	ASSERT_NE(INT64_MIN, do_umask(fd, w.session, 60, 022, r, NULL));
	fd2 = connect2(0, instance_id(7), TT_ALL_KINDS, &w2);
	ASSERT_LE(0, fd2);
	printf("left session %u (with a shadow) and %u (without)\n", w.session, w2.session);
	close(fd);
	close(fd2);
}

TEST_HARNESS_MAIN
