// SPDX-License-Identifier: GPL-2.0
/*
 * Protocol tests against tether_server.ko, run in the client VM (an allowed CID).
 * Server: TETHER_SERVER_CID (4), TETHER_PORT (7777), TETHER_HEARTBEAT_MS (500).
 */
#include "tether_wire.h"
#include "kselftest_harness.h"

#define SERVER_CID ((unsigned int)tt_env("TETHER_SERVER_CID", 4))
#define PORT ((unsigned int)tt_env("TETHER_PORT", 7777))
#define CHUNK 65536
#define BULK (1u << 20)

static int open_session(struct __test_metadata *_metadata, struct tt_welcome *w)
{
	int fd = tt_connect(SERVER_CID, PORT);

	ASSERT_LE(0, fd) TH_LOG("connect to %u:%u: %s", SERVER_CID, PORT, strerror(-fd));
	ASSERT_EQ(0, tt_handshake(fd, TT_MAX_FRAME, w));
	return fd;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = seed >> 56;
	}
}

FIXTURE(session) {
	int fd;
	struct tt_welcome w;
};

FIXTURE_SETUP(session)
{
	self->fd = open_session(_metadata, &self->w);
}

FIXTURE_TEARDOWN(session)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(session, handshake)
{
	EXPECT_EQ(TT_VERSION, self->w.version);
	EXPECT_NE(0, self->w.boot_verifier);
	EXPECT_NE(0, self->w.session);
	EXPECT_LE(TT_MIN_FRAME, self->w.max_frame);
	EXPECT_GE(TT_MAX_FRAME, self->w.max_frame);
	EXPECT_EQ(tt_env("TETHER_HEARTBEAT_MS", 500), self->w.heartbeat_ms);
	/* Kinds the server must support for these tests: HEARTBEAT, ECHO_REQ, SINK. */
	EXPECT_EQ(1ull << TT_HEARTBEAT | 1ull << TT_ECHO_REQ | 1ull << TT_SINK,
		  self->w.kinds & (1ull << TT_HEARTBEAT | 1ull << TT_ECHO_REQ | 1ull << TT_SINK));
}

TEST_F(session, heartbeat)
{
	for (uint64_t seq = 100; seq < 110; seq++)
		ASSERT_EQ(0, tt_heartbeat(self->fd, self->w.session, seq, 5000));
}

TEST_F(session, echo_small)
{
	uint8_t out[64], in[64];
	struct tt_hdr h;

	fill(out, sizeof(out), 7);
	ASSERT_EQ(0, tt_send_frame(self->fd, TT_ECHO_REQ, 0, self->w.session, 9, out, sizeof(out)));
	ASSERT_EQ(sizeof(in), tt_recv_frame(self->fd, &h, in, sizeof(in), 5000));
	EXPECT_EQ(TT_ECHO_REPLY, h.kind);
	EXPECT_EQ(9, h.seq);
	EXPECT_EQ(0, memcmp(out, in, sizeof(in)));
}

/* 1 MiB echoed in 64 KiB frames, byte for byte: guards the relay's split bug. */
TEST_F_TIMEOUT(session, echo_1mib, 120)
{
	uint8_t *out = malloc(CHUNK), *in = malloc(CHUNK);
	struct tt_hdr h;

	ASSERT_NE(NULL, out);
	ASSERT_NE(NULL, in);
	ASSERT_LE(CHUNK, self->w.max_frame);
	for (uint64_t seq = 1; seq <= BULK / CHUNK; seq++) {
		fill(out, CHUNK, seq);
		ASSERT_EQ(0, tt_send_frame(self->fd, TT_ECHO_REQ, 0, self->w.session, seq, out, CHUNK));
		ASSERT_EQ(CHUNK, tt_recv_frame(self->fd, &h, in, CHUNK, 20000));
		ASSERT_EQ(TT_ECHO_REPLY, h.kind);
		ASSERT_EQ(seq, h.seq);
		ASSERT_EQ(0, memcmp(out, in, CHUNK)) TH_LOG("frame %llu differs", (unsigned long long)seq);
	}
	free(out);
	free(in);
}

/* 1 MiB of SINK frames, then an ack with the byte count and checksum. */
TEST_F_TIMEOUT(session, sink_ack, 120)
{
	uint8_t *out = malloc(CHUNK), ack[64];
	uint64_t sum = TT_SUM_INIT;
	struct tt_hdr h;

	ASSERT_NE(NULL, out);
	for (uint64_t seq = 1; seq <= BULK / CHUNK; seq++) {
		fill(out, CHUNK, seq ^ 0x5a);
		sum = tt_sum64(sum, out, CHUNK);
		ASSERT_EQ(0, tt_send_frame(self->fd, TT_SINK, seq == BULK / CHUNK ? TT_F_ACK_REQ : 0,
					   self->w.session, seq, out, CHUNK));
	}
	ASSERT_EQ(16, tt_recv_frame(self->fd, &h, ack, sizeof(ack), 20000));
	EXPECT_EQ(TT_SINK_ACK, h.kind);
	EXPECT_EQ(BULK, tt_get64(ack));
	EXPECT_EQ(sum, tt_get64(ack + 8));
	free(out);
}

/* Eight connections handshake at the same time, then all answer heartbeats. */
#define NCONC 8
TEST(concurrent_sessions)
{
	int fd[NCONC], i, j;
	uint8_t body[TT_HANDSHAKE_MAX];
	struct tt_welcome w[NCONC];
	struct tt_hdr h;

	for (i = 0; i < NCONC; i++) {
		fd[i] = tt_connect(SERVER_CID, PORT);
		ASSERT_LE(0, fd[i]) TH_LOG("connect %d: %s", i, strerror(-fd[i]));
	}
	for (i = 0; i < NCONC; i++) {
		tt_hello_put(body, 1, 1, 0xc0cc000000000000ull + i, TT_MAX_FRAME, 500, TT_V1_KINDS);
		ASSERT_EQ(0, tt_send_frame(fd[i], TT_HELLO, 0, 0, 1, body, 28));
	}
	for (i = 0; i < NCONC; i++) {
		ssize_t n = tt_recv_frame(fd[i], &h, body, sizeof(body), 10000);

		ASSERT_LE(30, n) TH_LOG("WELCOME %d: %zd", i, n);
		ASSERT_EQ(TT_WELCOME, h.kind);
		ASSERT_TRUE(tt_welcome_get(body, n, &w[i]));
		for (j = 0; j < i; j++)
			EXPECT_NE(w[j].session, w[i].session);
	}
	for (int round = 0; round < 3; round++) {
		for (i = 0; i < NCONC; i++)
			ASSERT_EQ(0, tt_send_frame(fd[i], TT_HEARTBEAT, 0, w[i].session, 50 + round, NULL, 0));
		for (i = 0; i < NCONC; i++) {
			ASSERT_EQ(0, tt_recv_frame(fd[i], &h, body, sizeof(body), 5000));
			ASSERT_EQ(TT_HEARTBEAT, h.kind);
			ASSERT_EQ(TT_F_REPLY, h.flags & TT_F_REPLY);
			ASSERT_EQ(50 + round, h.seq);
		}
	}
	for (i = 0; i < NCONC; i++)
		close(fd[i]);
}

/*
 * Bad input: the server must close the bad connection (after an optional ERROR whose
 * code is checked) while an already-handshaken connection keeps answering heartbeats.
 */
FIXTURE(bad_input) {
	int good, bad;
	struct tt_welcome gw, bw;
};

FIXTURE_VARIANT(bad_input) {
	int after_handshake;	/* send the bad bytes on an established session */
	int shut_wr;		/* then shutdown(SHUT_WR) */
	uint32_t code;		/* expected ERROR code */
	/* fills buf (the session id given, 0 before WELCOME), returns the length */
	size_t (*build)(uint8_t *buf, uint32_t session);
};

static size_t b_random(uint8_t *b, uint32_t s)
{
	fill(b, 256, 0xbad);
	b[0] = 'X';	/* anything but 'T' */
	return 256;
}

static size_t b_truncated(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	tt_hello_put(b + TT_HDR_LEN, 1, 1, 1, TT_MAX_FRAME, 500, TT_V1_KINDS);
	return TT_HDR_LEN + 10;
}

static size_t b_truncated_header(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	return 20;
}

static size_t b_oversize_hello(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, TT_HANDSHAKE_MAX + 1, s, 1);
	return TT_HDR_LEN;
}

static size_t b_oversize_echo(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_ECHO_REQ, 0, TT_MAX_FRAME + 1, s, 1);
	return TT_HDR_LEN;
}

static size_t b_unknown_kind(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, 99, 0, 0, s, 1);
	return TT_HDR_LEN;
}

static size_t b_bad_version(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	tt_put16(b + 4, 2);
	tt_hello_put(b + TT_HDR_LEN, 1, 1, 1, TT_MAX_FRAME, 500, TT_V1_KINDS);
	return TT_HDR_LEN + 28;
}

static size_t b_hello_no_common_version(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	tt_hello_put(b + TT_HDR_LEN, 2, 3, 1, TT_MAX_FRAME, 500, TT_V1_KINDS);
	return TT_HDR_LEN + 28;
}

static size_t b_hello_tiny_frame(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	tt_hello_put(b + TT_HDR_LEN, 1, 1, 1, TT_MIN_FRAME - 1, 500, TT_V1_KINDS);
	return TT_HDR_LEN + 28;
}

static size_t b_bad_magic(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HELLO, 0, 28, s, 1);
	memcpy(b, "TTHX", 4);
	tt_hello_put(b + TT_HDR_LEN, 1, 1, 1, TT_MAX_FRAME, 500, TT_V1_KINDS);
	return TT_HDR_LEN + 28;
}

static size_t b_heartbeat(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HEARTBEAT, 0, 0, s, 1);
	return TT_HDR_LEN;
}

static size_t b_unknown_flags(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_HEARTBEAT, 0x80, 0, s, 1);
	return TT_HDR_LEN;
}

/* CLIENT_ATTRS with more supplementary groups than the protocol allows. */
static size_t b_attrs_too_many_groups(uint8_t *b, uint32_t s)
{
	static const uint32_t ids[6] = { 1000, 1000, 1000, 1000, 1000, 1000 };
	size_t n = tt_attrs_put(b + TT_HDR_LEN, ids, ~0ull, ~0ull, NULL, 0);

	tt_put32(b + TT_HDR_LEN + 40, TT_MAX_GROUPS + 1);
	tt_hdr_put(b, TT_CLIENT_ATTRS, 0, n, s, 1);
	return TT_HDR_LEN + n;
}

/* CLIENT_ATTRS whose soft file-size limit is above the hard one. */
static size_t b_attrs_bad_limit(uint8_t *b, uint32_t s)
{
	static const uint32_t ids[6] = { 1000, 1000, 1000, 1000, 1000, 1000 };
	size_t n = tt_attrs_put(b + TT_HDR_LEN, ids, 2, 1, NULL, 0);

	tt_hdr_put(b, TT_CLIENT_ATTRS, 0, n, s, 1);
	return TT_HDR_LEN + n;
}

/* A client sending what only a server sends. */
static size_t b_client_sends_signal(uint8_t *b, uint32_t s)
{
	tt_hdr_put(b, TT_SERVER_SIGNAL, 0, TT_SIGNAL_LEN, s, 1);
	return TT_HDR_LEN + tt_signal_put(b + TT_HDR_LEN, 25);
}

FIXTURE_VARIANT_ADD(bad_input, random_bytes) { .build = b_random, .code = TT_E_BAD_MAGIC };
FIXTURE_VARIANT_ADD(bad_input, truncated_then_shutdown) {
	.build = b_truncated, .shut_wr = 1, .code = TT_E_TRUNCATED };
FIXTURE_VARIANT_ADD(bad_input, truncated_header_then_shutdown) {
	.build = b_truncated_header, .shut_wr = 1, .code = TT_E_TRUNCATED };
FIXTURE_VARIANT_ADD(bad_input, oversize_before_welcome) {
	.build = b_oversize_hello, .code = TT_E_TOO_LONG };
FIXTURE_VARIANT_ADD(bad_input, oversize_after_welcome) {
	.build = b_oversize_echo, .after_handshake = 1, .code = TT_E_TOO_LONG };
FIXTURE_VARIANT_ADD(bad_input, unknown_kind) {
	.build = b_unknown_kind, .after_handshake = 1, .code = TT_E_UNKNOWN_KIND };
FIXTURE_VARIANT_ADD(bad_input, unknown_kind_first) {
	.build = b_unknown_kind, .code = TT_E_UNKNOWN_KIND };
FIXTURE_VARIANT_ADD(bad_input, wrong_version) { .build = b_bad_version, .code = TT_E_BAD_VERSION };
FIXTURE_VARIANT_ADD(bad_input, hello_no_common_version) {
	.build = b_hello_no_common_version, .code = TT_E_BAD_VERSION };
FIXTURE_VARIANT_ADD(bad_input, hello_max_frame_too_small) {
	.build = b_hello_tiny_frame, .code = TT_E_BAD_VALUE };
FIXTURE_VARIANT_ADD(bad_input, bad_magic) { .build = b_bad_magic, .code = TT_E_BAD_MAGIC };
FIXTURE_VARIANT_ADD(bad_input, not_hello_first) { .build = b_heartbeat, .code = TT_E_UNEXPECTED };
FIXTURE_VARIANT_ADD(bad_input, unknown_flags) {
	.build = b_unknown_flags, .after_handshake = 1, .code = TT_E_BAD_VALUE };
FIXTURE_VARIANT_ADD(bad_input, attrs_too_many_groups) {
	.build = b_attrs_too_many_groups, .after_handshake = 1, .code = TT_E_BAD_VALUE };
FIXTURE_VARIANT_ADD(bad_input, attrs_soft_limit_above_hard) {
	.build = b_attrs_bad_limit, .after_handshake = 1, .code = TT_E_BAD_VALUE };
FIXTURE_VARIANT_ADD(bad_input, server_signal_from_client) {
	.build = b_client_sends_signal, .after_handshake = 1, .code = TT_E_UNEXPECTED };

FIXTURE_SETUP(bad_input)
{
	self->good = open_session(_metadata, &self->gw);
	self->bad = tt_connect(SERVER_CID, PORT);
	ASSERT_LE(0, self->bad);
	self->bw.session = 0;
	if (variant->after_handshake)
		ASSERT_EQ(0, tt_handshake(self->bad, TT_MAX_FRAME, &self->bw));
}

FIXTURE_TEARDOWN(bad_input)
{
	close(self->good);
	close(self->bad);
}

TEST_F(bad_input, server_closes)
{
	uint8_t buf[4096], body[4096];
	struct tt_welcome w;
	int errors = 0, fd;
	struct tt_hdr h;
	ssize_t n;

	n = variant->build(buf, self->bw.session);
	ASSERT_EQ(0, tt_send(self->bad, buf, n));
	if (variant->shut_wr)
		ASSERT_EQ(0, shutdown(self->bad, SHUT_WR));
	/* Frames until the close: at most one ERROR, with the expected code. */
	for (;;) {
		n = tt_recv_frame(self->bad, &h, body, sizeof(body), 10000);
		if (n == -EPIPE || n == -ECONNRESET)
			break;
		ASSERT_LE(0, n) TH_LOG("waiting for the close: %s", strerror(-n));
		ASSERT_EQ(TT_ERROR, h.kind) TH_LOG("unexpected kind %u", h.kind);
		ASSERT_EQ(8, n);
		EXPECT_EQ(variant->code, tt_get32(body));
		EXPECT_EQ(0, errors++);
	}
	/* The other session is unaffected. */
	ASSERT_EQ(0, tt_heartbeat(self->good, self->gw.session, 77, 5000));
	/* And a fresh connection still handshakes. */
	fd = open_session(_metadata, &w);
	ASSERT_EQ(0, tt_heartbeat(fd, w.session, 78, 5000));
	close(fd);
}

TEST_HARNESS_MAIN
