// SPDX-License-Identifier: GPL-2.0
/*
 * Structure-aware fuzzer against tether_server.ko, run as root in the client VM (an allowed
 * CID with the key): authenticated sessions get frames with valid headers of every kind
 * (and unknown ones) whose bodies are built for their kind and then mutated (bit flips,
 * truncation, extension, random bytes), requests with call numbers from the shadow's
 * table and outside it, random buffer descriptors, ids and seqs; other connections send
 * mutated handshakes. Whatever it sends, the server must keep serving: every few seconds a
 * fresh session must answer an echo and a heartbeat, and at the end too.
 * FUZZ_SECONDS (30) bounds the run (make check); make fuzz runs it for 600 s.
 * FUZZ_SEED picks the sequence (default: the time; printed, so a run can be repeated).
 * Server: TETHER_SERVER_CID (4), TETHER_PORT (7777).
 */
#include "tether_wire.h"
#include "../../userspace-tools/tether_abi.h"
#include "kselftest_harness.h"

#define SERVER_CID ((unsigned int)tt_env("TETHER_SERVER_CID", 4))
#define PORT ((unsigned int)tt_env("TETHER_PORT", 7777))
#define MAX_BODY 8192

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint32_t below(uint32_t n) { return n ? (uint32_t)(next() % n) : 0; }

/* A body of about len bytes that looks like one of kind's, before mutation. */
static size_t shape(uint16_t kind, uint8_t *b, size_t cap)
{
	size_t n = 0;

	memset(b, 0, cap);
	switch (kind) {
	case TT_CLIENT_SYSTEM_CALL: {
		/* A call from the shadow's table (or around it), random arguments and buffers. */
		size_t ncalls = sizeof(tether_calls) / sizeof(tether_calls[0]);
		uint32_t nr = below(4) ? tether_calls[below(ncalls)].nr : (uint32_t)next();
		uint32_t nbufs = below(6), in = 0;

		tt_put32(b, nr);
		tt_put32(b + 4, nbufs);
		for (int i = 0; i < 6; i++)
			tt_put64(b + 8 + 8 * i, below(3) ? below(64) : next());
		n = TETHER_REQ_HEAD;
		for (uint32_t i = 0; i < nbufs && n + 8 <= cap; i++, n += 8) {
			uint32_t len = below(4) ? below(64) : (uint32_t)next();

			b[n] = below(8);
			b[n + 1] = below(8);
			tt_put32(b + n + 4, len);
			if (b[n + 1] & TETHER_DIR_IN)
				in += len < 4096 ? len : 0;
		}
		for (uint32_t i = 0; i < in && n < cap; i++)
			b[n++] = below(4) ? 'a' + below(26) : (uint8_t)next();
		break;
	}
	case TT_CLIENT_ATTRS: {
		uint32_t ids[6], groups[4];

		for (int i = 0; i < 6; i++)
			ids[i] = below(3) ? 1000 + below(1000) : (uint32_t)next();
		for (int i = 0; i < 4; i++)
			groups[i] = below(2) ? 1000 : (uint32_t)next();
		n = tt_attrs_put(b, ids, below(2) ? ~0ull : next(), ~0ull, groups, below(5));
		break;
	}
	case TT_CLIENT_FORK:
		tt_put32(b, below(2) ? 2000 + below(64) : (uint32_t)next());
		n = 4;
		break;
	case TT_HELLO:
		/* No resume fields (instance 0): a session it opens is not kept once dropped. */
		n = tt_hello_put2(b, below(3), below(3), next(), (uint32_t)next(), (uint32_t)next(),
				  next(), 0, 0);
		break;
	default:
		n = below(128);
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)next();
	}
	return n;
}

/* Mutates the body in place; its new length. */
static size_t mutate(uint8_t *b, size_t n, size_t cap)
{
	switch (below(6)) {
	case 0: /* as shaped */
		break;
	case 1: /* bit flips */
		for (int i = 0, k = 1 + below(8); n && i < k; i++)
			b[below(n)] ^= 1u << below(8);
		break;
	case 2: /* truncated */
		n = below(n + 1);
		break;
	case 3: /* extended with garbage */
		for (size_t add = below(256); add-- && n < cap;)
			b[n++] = (uint8_t)next();
		break;
	case 4: /* a field set to an extreme */
		if (n >= 8)
			tt_put64(b + (below(n - 7) & ~7u), below(2) ? ~0ull : 0x8000000000000000ull);
		break;
	default: /* all random */
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)next();
	}
	return n;
}

/*
 * Waits (5 s at most) for the server's answer to a handshake: a WELCOME (the mutated HELLO
 * still opened a session, maybe a resumable one) is answered with goodbye, so that the
 * server does not keep that session for a resume the fuzzer will never make.
 */
static void answered(int fd)
{
	uint8_t body[4096];
	struct tt_hdr h;

	for (int i = 0; i < 50; i++) {
		struct tt_welcome w;
		ssize_t n = tt_recv_frame(fd, &h, body, sizeof(body), 100);

		if (n == -ETIMEDOUT)
			continue;
		if (n < 0 || h.kind == TT_ERROR)
			return;
		if (h.kind == TT_WELCOME && tt_welcome_get(body, n, &w)) {
			tt_goodbye(fd, w.session);
			return;
		}
	}
}

/* Ends session `session` on `fd` for good, then closes. */
static void goodbye(int fd, uint32_t session)
{
	tt_goodbye(fd, session);
	close(fd);
}

/* An authenticated session: fd, or -errno. */
static int open_session(struct tt_welcome *w)
{
	int fd = tt_connect(SERVER_CID, PORT);

	if (fd < 0)
		return fd;
	if (tt_handshake(fd, TT_MAX_FRAME, w)) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

/* Whether a fresh session answers an echo and a heartbeat. */
static int serving(void)
{
	uint8_t body[64];
	struct tt_welcome w;
	struct tt_hdr h;
	ssize_t n;
	int ok, fd = open_session(&w);

	if (fd < 0)
		return 0;
	n = tt_send_frame(fd, TT_ECHO_REQ, 0, w.session, 7, "fuzz", 4);
	while (n >= 0) {
		n = tt_recv_frame(fd, &h, body, sizeof(body), 10000);
		if (n >= 0 && h.kind == TT_ECHO_REPLY)
			break;
	}
	ok = n == 4 && !memcmp(body, "fuzz", 4) && !tt_heartbeat(fd, w.session, 8, 10000);
	goodbye(fd, w.session);
	return ok;
}

/*
 * Reads whatever the server sent so far (replies, errors), without waiting long. A
 * WELCOME (a mutated handshake that still opened a session) is answered with ERROR
 * goodbye, so that the server ends that session at once instead of keeping it for a
 * resume the fuzzer will never make.
 */
static int drain(int fd)
{
	uint8_t body[4096];
	struct tt_hdr h;

	for (int i = 0; i < 64; i++) {
		ssize_t n = tt_recv_frame(fd, &h, body, sizeof(body), 1);
		struct tt_welcome w;

		if (n == -ETIMEDOUT)
			return 0;
		if (n < 0)
			return -1; /* closed: the server dropped it */
		if (h.kind == TT_WELCOME && tt_welcome_get(body, n, &w)) {
			tt_goodbye(fd, w.session);
			return -1; /* the caller closes */
		}
	}
	return 0;
}


FIXTURE(fuzz) {
	int unused;
};
FIXTURE_SETUP(fuzz) {}
FIXTURE_TEARDOWN(fuzz) {}

TEST_F_TIMEOUT(fuzz, server_survives_mutated_frames, 900)
{
	long seconds = tt_env("FUZZ_SECONDS", 30);
	uint64_t end = tt_now_ns() + (uint64_t)seconds * 1000000000ull, next_check;
	unsigned long frames = 0, sessions = 0, dropped = 0, handshakes = 0, checks = 0;
	static uint8_t body[MAX_BODY];
	struct tt_welcome w;
	int fd = -1;

	rng = (uint64_t)tt_env("FUZZ_SEED", (long)(tt_now_ns() | 1));
	TH_LOG("FUZZ_SEED=%llu FUZZ_SECONDS=%ld", (unsigned long long)rng, seconds);
	ASSERT_TRUE(serving()) TH_LOG("the server does not serve before the run");
	next_check = tt_now_ns() + 5000000000ull;
	while (tt_now_ns() < end) {
		uint16_t kind;
		size_t n;

		if (below(64) == 0) {
			/* A connection that sends a mutated handshake, then goes away. */
			int raw = tt_connect(SERVER_CID, PORT);

			if (raw >= 0) {
				n = mutate(body, shape(TT_HELLO, body, 256), 256);
				tt_send_frame(raw, below(2) ? TT_HELLO : below(20), (uint32_t)below(4),
					      (uint32_t)next(), next(), body, (uint32_t)n);
				answered(raw);
				close(raw);
				handshakes++;
			}
			continue;
		}
		if (fd < 0) {
			fd = open_session(&w);
			if (fd < 0) {
				usleep(100000);
				continue;
			}
			sessions++;
		}
		kind = below(8) ? (uint16_t)(1 + below(16)) : (uint16_t)next();
		n = mutate(body, shape(kind, body, sizeof(body)), sizeof(body));
		{
			uint8_t f[TT_HDR_LEN + MAX_BODY];
			/* The client's own process ids, a few of them: every new one starts a shadow. */
			uint32_t rpid = below(4) ? (uint32_t)getpid() + below(4) : (uint32_t)next();

			/* A fork from a process with a shadow makes a process on the server: rare. */
			if (kind == TT_CLIENT_FORK && below(8))
				rpid = (uint32_t)next();

			tt_hdr_put(f, kind, below(8) ? 0 : (uint32_t)below(4), (uint32_t)n,
				   below(16) ? w.session : (uint32_t)next(), below(4) ? frames + 2 : next());
			tt_put32(f + 20, rpid);
			if (below(32) == 0)
				f[below(TT_HDR_LEN)] ^= 1u << below(8); /* a broken header */
			memcpy(f + TT_HDR_LEN, body, n);
			if (tt_send(fd, f, TT_HDR_LEN + n) < 0 || drain(fd) < 0) {
				goodbye(fd, w.session);
				fd = -1;
				dropped++;
			}
		}
		frames++;
		if (tt_now_ns() >= next_check) {
			ASSERT_TRUE(serving()) TH_LOG("the server stopped serving after %lu frames", frames);
			checks++;
			next_check = tt_now_ns() + 5000000000ull;
		}
	}
	if (fd >= 0)
		goodbye(fd, w.session);
	TH_LOG("%lu frames on %lu sessions (%lu dropped by the server), %lu mutated handshakes, %lu checks",
	       frames, sessions, dropped, handshakes, checks);
	EXPECT_LT(0, frames);
	EXPECT_TRUE(serving()) TH_LOG("the server does not serve after the run");
}

TEST_HARNESS_MAIN
