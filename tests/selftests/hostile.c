// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile client in the client VM: raw AF_VSOCK connections to tether_server.ko that
 * try to get in without being the client module (over TCP instead with TETHER_TCP_SERVER,
 * tether_wire.h). Run as an unprivileged user and as root, over vsock and as root over TCP
 * (tests/vm/remote-client.sh); cases that need the other identity skip.
 * Every attempt must be refused; the server must keep serving (each case ends with an
 * honest handshake and heartbeat).
 * Env: TETHER_SERVER_CID (4), TETHER_PORT (7777), HOSTILE_MAX_HANDSHAKES (16),
 * HOSTILE_MAX_SESSIONS_PER_CID (32), HOSTILE_DENIED_UID (2000), HOSTILE_ALLOWED_UID (1000).
 */
#include "tether_wire.h"
#include "kselftest_harness.h"

#define SERVER_CID ((unsigned int)tt_env("TETHER_SERVER_CID", 4))
#define PORT ((unsigned int)tt_env("TETHER_PORT", 7777))
#define ROOT (geteuid() == 0)

/* The first frame the server sends on fd: ERROR -> its code; CHALLENGE -> 0;
 * end of stream -> -EPIPE; anything else -> -EPROTO. */
static int first_code(int fd, int timeout_ms)
{
	uint8_t body[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	ssize_t n = tt_recv_frame(fd, &h, body, sizeof(body), timeout_ms);

	if (n < 0)
		return n == -ECONNRESET ? -EPIPE : (int)n;
	if (h.kind == TT_ERROR && n >= 8)
		return tt_get32(body);
	return h.kind == TT_CHALLENGE ? 0 : -EPROTO;
}

/* After a refusal: the server closes the connection (EOF or reset within 5 s). */
static int closed_by_server(int fd)
{
	uint8_t b[256];
	struct tt_hdr h;

	for (int i = 0; i < 8; i++) {
		ssize_t n = tt_recv_frame(fd, &h, b, sizeof(b), 5000);

		if (n == -EPIPE || n == -ECONNRESET)
			return 1;
		if (n < 0)
			return 0;
	}
	return 0;
}

/* An honest client still gets in and is answered: handshake, WELCOME proven, heartbeat. */
static int honest(void)
{
	struct tt_welcome w;
	int fd = tt_connect(SERVER_CID, PORT), r;

	if (fd < 0)
		return fd;
	r = tt_handshake(fd, TT_MAX_FRAME, &w);
	if (!r)
		r = tt_heartbeat(fd, w.session, 77, 5000);
	close(fd);
	return r;
}

/* The server's reply to the CLIENT_SYSTEM_CALL seq on fd (other frames skipped). */
static int64_t call_ret(int fd, uint64_t seq)
{
	uint8_t b[4096];
	struct tt_hdr h;
	int64_t ret;

	for (;;) {
		ssize_t n = tt_recv_frame(fd, &h, b, sizeof(b), 20000);

		if (n < 0)
			return -100000 + n;
		if (h.kind == TT_SERVER_REPLY && h.seq == seq)
			return tt_reply_ret(b, n, &ret) ? ret : -100001;
	}
}

TEST(user_cannot_bind_reserved_port)
{
	int fd;
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 1000 };
	struct sockaddr_in ai = { .sin_family = AF_INET, .sin_port = htons(1000) };

	if (ROOT)
		SKIP(return, "as root");
	fd = socket(tt_tcp_server() ? AF_INET : AF_VSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, tt_tcp_server() ? bind(fd, (struct sockaddr *)&ai, sizeof(ai))
				      : bind(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(EACCES, errno);
	close(fd);
}

TEST(user_cannot_read_the_key)
{
	if (ROOT)
		SKIP(return, "as root");
	EXPECT_GT(0, open(getenv("TETHER_KEY_FILE") ? getenv("TETHER_KEY_FILE") : "/etc/tether/key", O_RDONLY));
}

/* From an unreserved port: refused before any CHALLENGE, with AUTH_FAILED. */
TEST(unreserved_source_port_refused)
{
	int fd = tt_connect_raw(SERVER_CID, PORT, 0);

	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	EXPECT_EQ(TT_E_AUTH_FAILED, first_code(fd, 5000));
	EXPECT_TRUE(closed_by_server(fd));
	close(fd);
	if (ROOT)
		EXPECT_EQ(0, honest());
}

/* A full authenticated HELLO as a user (who cannot read the key): still the port. */
TEST(user_hello_refused)
{
	uint8_t body[TT_HELLO_AUTH_LEN];
	int fd;

	if (ROOT)
		SKIP(return, "as root");
	fd = tt_connect_raw(SERVER_CID, PORT, 0);
	ASSERT_LE(0, fd);
	tt_hello_put2(body, 1, 1, 1, TT_MAX_FRAME, 500, TT_ALL_KINDS, 0, 0);
	memset(body + 40, 0x5a, 64);
	tt_send_frame(fd, TT_HELLO, 0, 0, 1, body, TT_HELLO_AUTH_LEN);
	EXPECT_EQ(TT_E_AUTH_FAILED, first_code(fd, 5000));
	close(fd);
}

/* Sends a HELLO body as is (no automatic authentication) and returns the answer's code. */
static int raw_hello(int fd, const uint8_t *body, uint32_t len)
{
	uint8_t b[TT_HDR_LEN + TT_HELLO_AUTH_LEN];

	tt_hdr_put(b, TT_HELLO, 0, len, 0, 1);
	memcpy(b + TT_HDR_LEN, body, len);
	if (tt_send(fd, b, TT_HDR_LEN + len))
		return -EIO;
	return first_code(fd, 5000);
}

TEST(hello_without_mac_refused)
{
	uint8_t body[40];
	int fd;

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	tt_hello_put2(body, 1, 1, 1, TT_MAX_FRAME, 500, TT_ALL_KINDS, 0, 0);
	EXPECT_EQ(TT_E_AUTH_FAILED, raw_hello(fd, body, 40));
	EXPECT_TRUE(closed_by_server(fd));
	close(fd);
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	EXPECT_EQ(TT_E_AUTH_FAILED, raw_hello(fd, body, 28));
	close(fd);
	EXPECT_EQ(0, honest());
}

TEST(hello_with_wrong_key_refused)
{
	static const uint8_t wrong[] = "not-the-key-0123456789abcdef0123";
	uint8_t body[TT_HELLO_AUTH_LEN], signed_body[TT_HELLO_AUTH_LEN];
	int fd;

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	tt_hello_put2(body, 1, 1, 1, TT_MAX_FRAME, 500, TT_ALL_KINDS, 0, 0);
	tt_random(body + 40, 32);
	tt_hello_mac(wrong, sizeof(wrong) - 1, tt_auth[fd].snonce, body + 40, body, body + 72);
	EXPECT_EQ(TT_E_AUTH_FAILED, raw_hello(fd, body, TT_HELLO_AUTH_LEN));
	close(fd);
	/* The right MAC with one field changed after signing. */
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	tt_hello_auth(fd, body, 40, signed_body);
	signed_body[12] ^= 1;	/* max_frame */
	EXPECT_EQ(TT_E_AUTH_FAILED, raw_hello(fd, signed_body, TT_HELLO_AUTH_LEN));
	close(fd);
	EXPECT_EQ(0, honest());
}

/* A HELLO that was valid on one connection is worthless on another (new nonce). */
TEST(replayed_hello_refused)
{
	uint8_t body[TT_HELLO_AUTH_LEN], rec[TT_HELLO_AUTH_LEN], b[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	int a, fd;
	ssize_t n;

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	a = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, a);
	tt_hello_put2(body, 1, 1, 1, TT_MAX_FRAME, 500, TT_V1_KINDS, 0, 0);
	tt_hello_auth(a, body, 40, rec);
	ASSERT_EQ(0, tt_send(a, (tt_hdr_put(b, TT_HELLO, 0, TT_HELLO_AUTH_LEN, 0, 1), b), TT_HDR_LEN));
	ASSERT_EQ(0, tt_send(a, rec, TT_HELLO_AUTH_LEN));
	n = tt_recv_frame(a, &h, b, sizeof(b), 10000);
	ASSERT_EQ(TT_WELCOME, h.kind) TH_LOG("the recorded HELLO itself was refused (%zd)", n);
	EXPECT_TRUE(tt_welcome_authentic(a, b, n));
	/* Replayed on a new connection, and again on another. */
	for (int i = 0; i < 2; i++) {
		fd = tt_connect(SERVER_CID, PORT);
		ASSERT_LE(0, fd);
		EXPECT_EQ(TT_E_AUTH_FAILED, raw_hello(fd, rec, TT_HELLO_AUTH_LEN));
		close(fd);
	}
	close(a);
	EXPECT_EQ(0, honest());
}

/* A forged WELCOME MAC is what a client refuses: the check itself works. */
TEST(welcome_proves_the_key)
{
	uint8_t body[40], b[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	ssize_t n;
	int fd;

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	tt_hello_put2(body, 1, 1, 1, TT_MAX_FRAME, 500, TT_V1_KINDS, 0, 0);
	ASSERT_EQ(0, tt_send_frame(fd, TT_HELLO, 0, 0, 1, body, 40));
	n = tt_recv_frame(fd, &h, b, sizeof(b), 10000);
	ASSERT_EQ(TT_WELCOME, h.kind);
	ASSERT_EQ(TT_WELCOME_AUTH_LEN, n);
	EXPECT_TRUE(tt_welcome_authentic(fd, b, n));
	b[34] ^= 1;
	EXPECT_FALSE(tt_welcome_authentic(fd, b, n));
	close(fd);
}

/* Sends CLIENT_ATTRS (all ids uid/gid, groups) for rpid, then umask(022) for rpid. */
static int64_t attrs_then_call(int fd, uint32_t session, uint32_t rpid, uint32_t uid,
			       uint32_t gid, const uint32_t *groups, uint32_t ngroups,
			       uint64_t seq)
{
	uint8_t b[TT_HDR_LEN + 48 + 4 * TT_MAX_GROUPS];
	uint32_t ids[6] = { uid, uid, uid, gid, gid, gid };
	uint64_t args[6] = { 022 };
	size_t n = tt_attrs_put(b + TT_HDR_LEN, ids, ~0ull, ~0ull, groups, ngroups);

	tt_hdr_put(b, TT_CLIENT_ATTRS, 0, n, session, seq);
	tt_put32(b + 20, rpid);
	if (tt_send(fd, b, TT_HDR_LEN + n))
		return -100002;
	n = tt_syscall_put(b + TT_HDR_LEN, 95 /* umask */, args);
	tt_hdr_put(b, TT_CLIENT_SYSTEM_CALL, 0, n, session, seq + 1);
	tt_put32(b + 20, rpid);
	if (tt_send(fd, b, TT_HDR_LEN + n))
		return -100003;
	return call_ret(fd, seq + 1);
}

/*
 * Ids outside the client's export ranges (HOSTILE_DENIED_UID, group 6 "disk"): the
 * process's calls fail with EPERM; claiming allowed ids again lets them through.
 */
TEST(unlisted_ids_refused)
{
	uint32_t denied = tt_env("HOSTILE_DENIED_UID", 2000), ok = tt_env("HOSTILE_ALLOWED_UID", 1000);
	uint32_t disk = 6;
	struct tt_welcome w;
	int fd;

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	fd = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, tt_handshake(fd, TT_MAX_FRAME, &w));
	EXPECT_EQ(-EPERM, attrs_then_call(fd, w.session, 4242, denied, ok, NULL, 0, 10));
	EXPECT_EQ(-EPERM, attrs_then_call(fd, w.session, 4242, ok, denied, NULL, 0, 20));
	EXPECT_EQ(-EPERM, attrs_then_call(fd, w.session, 4242, ok, ok, &disk, 1, 30));
	/* Allowed ids: the call runs (umask returns the previous mask, >= 0). */
	EXPECT_LE(0, attrs_then_call(fd, w.session, 4242, ok, ok, NULL, 0, 40));
	/* Another process claiming a denied uid from the start: no shadow, EPERM. */
	EXPECT_EQ(-EPERM, attrs_then_call(fd, w.session, 4243, denied, denied, NULL, 0, 50));
	close(fd);
	EXPECT_EQ(0, honest());
}

/* Idle connections that never send HELLO: beyond max_handshakes refused (BUSY) at
 * once; every idle one closed by the server within a few seconds; then served again.
 * The server drops a silent connection after 3 heartbeat intervals (1.5 s): when opening
 * them all took that long (a loaded TCG machine), the first ones may be gone before the
 * last arrive and fewer are refused, so the round is tried again, up to 3 times; if it
 * is never fast enough, the limit must still have refused at least one. */
TEST(idle_pre_hello_connections)
{
	int max = tt_env("HOSTILE_MAX_HANDSHAKES", 16), n = max + 4, busy = 0, closed = 0;
	uint64_t took = 0, window = 3 * (uint64_t)tt_env("TETHER_HEARTBEAT_MS", 500) - 200;
	int fd[64];

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	ASSERT_GE(64, n);
	for (int round = 0; round < 3; round++) {
		uint64_t t0 = tt_now_ns();

		busy = 0;
		closed = 0;
		for (int i = 0; i < n; i++) {
			fd[i] = tt_connect_raw(SERVER_CID, PORT, 1);
			ASSERT_LE(0, fd[i]) TH_LOG("connect %d: %s", i, strerror(-fd[i]));
		}
		took = (tt_now_ns() - t0) / 1000000;
		for (int i = 0; i < n; i++) {
			int c = first_code(fd[i], 5000);

			if (c == TT_E_BUSY)
				busy++;
		}
		for (int i = 0; i < n; i++) {
			closed += closed_by_server(fd[i]);
			close(fd[i]);
		}
		if (busy >= n - max || took < window)
			break;
		TH_LOG("round %d: %d of %d refused with BUSY, but opening them took %llu ms: again",
		       round, busy, n, (unsigned long long)took);
		sleep(6);
	}
	TH_LOG("%d of %d refused with BUSY (opened in %llu ms)", busy, n,
	       (unsigned long long)took);
	EXPECT_LE(took < window ? n - max : 1, busy);
	EXPECT_EQ(n, closed);
	EXPECT_EQ(0, honest());
}

/* One CID opening sessions until refused: BUSY at max_sessions_per_cid at the latest. */
TEST(sessions_per_cid_limit)
{
	int max = tt_env("HOSTILE_MAX_SESSIONS_PER_CID", 32), fd[160], n = 0, refused = 0;
	uint8_t body[40];

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	ASSERT_GE(150, max);
	while (n <= max + 1) {
		struct tt_hdr h;
		uint8_t b[TT_HANDSHAKE_MAX];
		ssize_t r;

		fd[n] = tt_connect(SERVER_CID, PORT);
		ASSERT_LE(0, fd[n]) TH_LOG("connect %d: %s", n, strerror(-fd[n]));
		tt_hello_put(body, 1, 1, 0x4051000000000000ull + n, TT_MAX_FRAME, 500, TT_V1_KINDS);
		ASSERT_EQ(0, tt_send_frame(fd[n], TT_HELLO, 0, 0, 1, body, 28));
		r = tt_recv_frame(fd[n], &h, b, sizeof(b), 10000);
		ASSERT_LE(0, r);
		n++;
		if (h.kind == TT_ERROR) {
			EXPECT_EQ(TT_E_BUSY, tt_get32(b));
			refused = 1;
			break;
		}
		ASSERT_EQ(TT_WELCOME, h.kind);
		/* Keep every session alive (a silent one is dropped after three heartbeat
		 * intervals): any frame counts; the answers are never read. */
		for (int i = 0; i < n; i++)
			tt_send_frame(fd[i], TT_HEARTBEAT, 0, 0, 1000 + n, NULL, 0);
	}
	EXPECT_TRUE(refused) TH_LOG("%d sessions from one CID, none refused", n);
	for (int i = 0; i < n; i++)
		close(fd[i]);
	/* The sessions end with their connections (instance 0): room again. */
	for (int i = 0; i < 50 && honest(); i++)
		usleep(100000);
	EXPECT_EQ(0, honest());
}

/* A peer that never reads: its refusal and its session's sends must not hold the server. */
TEST(peer_without_send_credit)
{
	uint64_t small = 1;	/* no send credit: not even an ERROR fits */
	int idle[8], flood, r;
	struct tt_welcome w;
	static uint8_t big[60000];

	if (!ROOT)
		SKIP(return, "needs root (reserved port)");
	/* Refused connections (unreserved port) that never read and grant 1 byte of credit
	 * (over TCP: the smallest receive buffer). */
	for (int i = 0; i < 8 && tt_tcp_server(); i++) {
		int one = 1;

		idle[i] = tt_connect_raw(SERVER_CID, PORT, 0);
		if (idle[i] >= 0)
			setsockopt(idle[i], SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
	}
	for (int i = 0; i < 8 && !tt_tcp_server(); i++) {
		idle[i] = socket(AF_VSOCK, SOCK_STREAM, 0);
		ASSERT_LE(0, idle[i]);
		setsockopt(idle[i], AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &small, sizeof(small));
		setsockopt(idle[i], AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &small, sizeof(small));
		{
			struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = SERVER_CID, .svm_port = PORT };

			connect(idle[i], (struct sockaddr *)&a, sizeof(a));
		}
	}
	{
		uint64_t t0 = tt_now_ns();

		EXPECT_EQ(0, honest());
		EXPECT_GT(5000000000ull, tt_now_ns() - t0) TH_LOG("honest handshake took %llu ms",
			(unsigned long long)((tt_now_ns() - t0) / 1000000));
	}
	/* A session that asks for echoes of 60 KB and never reads them. */
	flood = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, flood);
	ASSERT_EQ(0, tt_handshake(flood, TT_MAX_FRAME, &w));
	setsockopt(flood, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &small, sizeof(small));
	for (int i = 0; i < 64; i++) {
		r = tt_send_frame(flood, TT_ECHO_REQ, 0, w.session, 100 + i, big, sizeof(big));
		if (r)
			break;
	}
	EXPECT_EQ(0, honest());
	for (int i = 0; i < 8; i++)
		close(idle[i]);
	close(flood);
	EXPECT_EQ(0, honest());
}

TEST_HARNESS_MAIN
