/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tether wire format, written independently of rust/src (it cross-checks it):
 * a 32-byte little-endian header {magic "TTHR", u16 version, u16 kind, u32 flags, u32 len,
 * u32 session, u32 rpid, u64 seq} then len body bytes. Plus vsock helpers that split every
 * send into writes of at most TETHER_SPLIT bytes (vhost-device-vsock 0.3.0 mangles larger
 * guest-to-guest sends).
 */
#ifndef TETHER_WIRE_H
#define TETHER_WIRE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define TT_HDR_LEN 32
#define TT_VERSION 1
#define TT_MAX_FRAME (1u << 20)
#define TT_HANDSHAKE_MAX 4096
#define TT_MIN_FRAME 512
#define TT_F_REPLY 1u
#define TT_F_ACK_REQ 2u
#define TT_SUM_INIT 0xcbf29ce484222325ull

enum tt_kind {
	TT_HELLO = 1, TT_WELCOME, TT_HEARTBEAT, TT_ERROR,
	TT_ECHO_REQ, TT_ECHO_REPLY, TT_SINK, TT_SINK_ACK,
	TT_CLIENT_SYSTEM_CALL, TT_SERVER_REPLY, TT_CLIENT_FORK, TT_CLIENT_EXIT,
	TT_SERVER_SIGNAL, TT_CLIENT_ATTRS, TT_SERVER_FLUSHED, TT_CHALLENGE,
	TT_CLIENT_THREAD, TT_CLIENT_THREAD_CALL,
};
enum tt_err {
	TT_E_TRUNCATED = 1, TT_E_BAD_MAGIC, TT_E_BAD_VERSION, TT_E_UNKNOWN_KIND,
	TT_E_TOO_LONG, TT_E_BAD_VALUE, TT_E_UNEXPECTED, TT_E_NOT_ALLOWED, TT_E_GOODBYE,
	TT_E_AUTH_FAILED, TT_E_BUSY,
};
#define TT_V1_KINDS 0x1ffeull /* bit n for kind n, kinds 1..12: a client before crash recovery */
#define TT_ALL_KINDS 0x7fffeull /* kinds 1..18 */
#define TT_W_RESUMED 1u /* WELCOME.flags: the session was resumed */

struct tt_hdr {
	uint32_t magic;
	uint16_t version, kind;
	uint32_t flags, len, session, rpid;
	uint64_t seq;
};

struct tt_welcome {
	uint16_t version;
	uint64_t boot_verifier;
	uint32_t max_frame, heartbeat_ms, session;
	uint64_t kinds;
	uint32_t flags; /* 0 in a 30-byte (older) body */
	uint8_t mac[32]; /* zeros in a 34-byte (older) body */
};

struct tt_flushed {
	uint64_t up_to_seq, boot_verifier;
};

static inline void tt_put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void tt_put32(uint8_t *p, uint32_t v) { tt_put16(p, v); tt_put16(p + 2, v >> 16); }
static inline void tt_put64(uint8_t *p, uint64_t v) { tt_put32(p, v); tt_put32(p + 4, v >> 32); }
static inline uint16_t tt_get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static inline uint32_t tt_get32(const uint8_t *p) { return tt_get16(p) | (uint32_t)tt_get16(p + 2) << 16; }
static inline uint64_t tt_get64(const uint8_t *p) { return tt_get32(p) | (uint64_t)tt_get32(p + 4) << 32; }

/* Encodes a header with the right magic and version into out[32]. */
static inline void tt_hdr_put(uint8_t *out, uint16_t kind, uint32_t flags, uint32_t len,
			      uint32_t session, uint64_t seq)
{
	memcpy(out, "TTHR", 4);
	tt_put16(out + 4, TT_VERSION);
	tt_put16(out + 6, kind);
	tt_put32(out + 8, flags);
	tt_put32(out + 12, len);
	tt_put32(out + 16, session);
	tt_put32(out + 20, 0);
	tt_put64(out + 24, seq);
}

static inline void tt_hdr_get(const uint8_t *in, struct tt_hdr *h)
{
	h->magic = tt_get32(in);
	h->version = tt_get16(in + 4);
	h->kind = tt_get16(in + 6);
	h->flags = tt_get32(in + 8);
	h->len = tt_get32(in + 12);
	h->session = tt_get32(in + 16);
	h->rpid = tt_get32(in + 20);
	h->seq = tt_get64(in + 24);
}

/* HELLO body of a client before crash recovery (28 bytes). */
static inline size_t tt_hello_put(uint8_t *out, uint16_t minv, uint16_t maxv, uint64_t bv,
				  uint32_t max_frame, uint32_t hb_ms, uint64_t kinds)
{
	tt_put16(out, minv);
	tt_put16(out + 2, maxv);
	tt_put64(out + 4, bv);
	tt_put32(out + 12, max_frame);
	tt_put32(out + 16, hb_ms);
	tt_put64(out + 20, kinds);
	return 28;
}

/* HELLO body with the resume fields (40 bytes): the session to resume (0: new) and the
 * client instance id (0: the session cannot be resumed). */
static inline size_t tt_hello_put2(uint8_t *out, uint16_t minv, uint16_t maxv, uint64_t bv,
				   uint32_t max_frame, uint32_t hb_ms, uint64_t kinds,
				   uint32_t resume_session, uint64_t instance)
{
	tt_hello_put(out, minv, maxv, bv, max_frame, hb_ms, kinds);
	tt_put32(out + 28, resume_session);
	tt_put64(out + 32, instance);
	return 40;
}

/* SERVER_FLUSHED body (16 bytes); returns 0 when too short. */
static inline int tt_flushed_get(const uint8_t *in, size_t len, struct tt_flushed *f)
{
	if (len < 16)
		return 0;
	f->up_to_seq = tt_get64(in);
	f->boot_verifier = tt_get64(in + 8);
	return 1;
}

/* CLIENT_SYSTEM_CALL body without buffers (56 bytes): nr and six register arguments. */
static inline size_t tt_syscall_put(uint8_t *out, uint32_t nr, const uint64_t args[6])
{
	tt_put32(out, nr);
	tt_put32(out + 4, 0);
	for (int i = 0; i < 6; i++)
		tt_put64(out + 8 + 8 * i, args[i]);
	return 56;
}

/* SERVER_REPLY: the return value (i64 at offset 0); 0 when the body is too short. */
static inline int tt_reply_ret(const uint8_t *in, size_t len, int64_t *ret)
{
	if (len < 16)
		return 0;
	*ret = (int64_t)tt_get64(in);
	return 1;
}
/* WELCOME body (34 bytes; 30 from older servers, flags 0); returns 0 when too short. */
static inline int tt_welcome_get(const uint8_t *in, size_t len, struct tt_welcome *w)
{
	if (len < 30)
		return 0;
	w->version = tt_get16(in);
	w->boot_verifier = tt_get64(in + 2);
	w->max_frame = tt_get32(in + 10);
	w->heartbeat_ms = tt_get32(in + 14);
	w->session = tt_get32(in + 18);
	w->kinds = tt_get64(in + 22);
	w->flags = len >= 34 ? tt_get32(in + 30) : 0;
	memset(w->mac, 0, sizeof(w->mac));
	if (len >= 66)
		memcpy(w->mac, in + 34, 32);
	return 1;
}

/*
 * Authentication (rust/src/auth.rs): the server's first frame is CHALLENGE {nonce_s[32],
 * u32 flags, u32 0}; HELLO carries {40 bytes of fields, nonce_c[32], mac_c[32]} with
 * mac_c = HMAC-SHA256(key, "tether-hello-v1\0" | nonce_s | nonce_c | HELLO[0..40]);
 * WELCOME carries {34 bytes of fields, mac_s[32]} with
 * mac_s = HMAC-SHA256(key, "tether-welcome1\0" | nonce_s | nonce_c | WELCOME[0..34] | mac_c).
 * SHA-256 here is written from FIPS 180-4, independently of the Rust one.
 */
#define TT_CHALLENGE_LEN 40
#define TT_C_AUTH 1u
#define TT_HELLO_AUTH_LEN 104
#define TT_WELCOME_AUTH_LEN 66

struct tt_sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	size_t fill;
	uint64_t total;
};

static inline uint32_t tt_ror(uint32_t x, int n) { return x >> n | x << (32 - n); }

static inline void tt_sha256_block(struct tt_sha256 *c, const uint8_t *p)
{
	static const uint32_t k[64] = {
		0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
		0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
		0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
		0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
		0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
		0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
		0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
		0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
	};
	uint32_t w[64], v[8], t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | p[4 * i + 1] << 16 | p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 64; i++)
		w[i] = w[i - 16] + (tt_ror(w[i - 15], 7) ^ tt_ror(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
		       w[i - 7] + (tt_ror(w[i - 2], 17) ^ tt_ror(w[i - 2], 19) ^ (w[i - 2] >> 10));
	memcpy(v, c->h, sizeof(v));
	for (i = 0; i < 64; i++) {
		t1 = v[7] + (tt_ror(v[4], 6) ^ tt_ror(v[4], 11) ^ tt_ror(v[4], 25)) +
		     ((v[4] & v[5]) ^ (~v[4] & v[6])) + k[i] + w[i];
		t2 = (tt_ror(v[0], 2) ^ tt_ror(v[0], 13) ^ tt_ror(v[0], 22)) +
		     ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		c->h[i] += v[i];
}

static inline void tt_sha256_init(struct tt_sha256 *c)
{
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	memcpy(c->h, h0, sizeof(h0));
	c->fill = 0;
	c->total = 0;
}

static inline void tt_sha256_update(struct tt_sha256 *c, const void *data, size_t n)
{
	const uint8_t *p = data;

	c->total += n;
	while (n) {
		size_t k = 64 - c->fill < n ? 64 - c->fill : n;

		memcpy(c->buf + c->fill, p, k);
		c->fill += k;
		p += k;
		n -= k;
		if (c->fill == 64) {
			tt_sha256_block(c, c->buf);
			c->fill = 0;
		}
	}
}

static inline void tt_sha256_final(struct tt_sha256 *c, uint8_t out[32])
{
	uint64_t bits = c->total * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	int i;

	tt_sha256_update(c, &pad, 1);
	while (c->fill != 56)
		tt_sha256_update(c, &zero, 1);
	for (i = 0; i < 8; i++)
		len[i] = bits >> (56 - 8 * i);
	tt_sha256_update(c, len, 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = c->h[i] >> 24;
		out[4 * i + 1] = c->h[i] >> 16;
		out[4 * i + 2] = c->h[i] >> 8;
		out[4 * i + 3] = c->h[i];
	}
}

/* HMAC-SHA256 under key of the concatenation of n pieces. */
static inline void tt_hmac(const uint8_t *key, size_t klen, const void *const *parts,
			   const size_t *lens, int n, uint8_t out[32])
{
	uint8_t k[64] = { 0 }, pad[64], inner[32];
	struct tt_sha256 c;
	int i;

	if (klen > 64) {
		tt_sha256_init(&c);
		tt_sha256_update(&c, key, klen);
		tt_sha256_final(&c, k);
	} else {
		memcpy(k, key, klen);
	}
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	tt_sha256_init(&c);
	tt_sha256_update(&c, pad, 64);
	for (i = 0; i < n; i++)
		tt_sha256_update(&c, parts[i], lens[i]);
	tt_sha256_final(&c, inner);
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	tt_sha256_init(&c);
	tt_sha256_update(&c, pad, 64);
	tt_sha256_update(&c, inner, 32);
	tt_sha256_final(&c, out);
}

/* mac_c of a HELLO whose first 40 bytes are hello40. */
static inline void tt_hello_mac(const uint8_t *key, size_t klen, const uint8_t snonce[32],
				const uint8_t cnonce[32], const uint8_t *hello40, uint8_t out[32])
{
	const void *parts[4] = { "tether-hello-v1", snonce, cnonce, hello40 };
	const size_t lens[4] = { 16, 32, 32, 40 };

	tt_hmac(key, klen, parts, lens, 4, out);
}

/* mac_s of a WELCOME whose first 34 bytes are welcome34, answering a HELLO with mac_c. */
static inline void tt_welcome_mac(const uint8_t *key, size_t klen, const uint8_t snonce[32],
				  const uint8_t cnonce[32], const uint8_t *welcome34,
				  const uint8_t mac_c[32], uint8_t out[32])
{
	const void *parts[5] = { "tether-welcome1", snonce, cnonce, welcome34, mac_c };
	const size_t lens[5] = { 16, 32, 32, 34, 32 };

	tt_hmac(key, klen, parts, lens, 5, out);
}

/* The shared key: TETHER_KEY_FILE (default /etc/tether/key), trailing white space cut.
 * Returns its length (0: none or unreadable). */
static inline size_t tt_key(const uint8_t **key)
{
	static uint8_t buf[320];
	static ssize_t len = -1;

	if (len < 0) {
		const char *path = getenv("TETHER_KEY_FILE");
		int fd = open(path && *path ? path : "/etc/tether/key", O_RDONLY);

		len = 0;
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf));

			close(fd);
			while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
					 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
				n--;
			len = n > 0 ? n : 0;
		}
	}
	*key = buf;
	return len;
}

/* Per fd (below TT_MAX_FDS): the server's challenge nonce, and the last HELLO's nonce
 * and MAC (for checking the WELCOME). */
#define TT_MAX_FDS 1024
struct tt_conn_auth {
	int have;
	uint8_t snonce[32], cnonce[32], mac_c[32];
};
static struct tt_conn_auth tt_auth[TT_MAX_FDS];

static inline void tt_random(uint8_t *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY);
	ssize_t got = fd >= 0 ? read(fd, p, n) : -1;

	if (fd >= 0)
		close(fd);
	for (size_t i = got > 0 ? (size_t)got : 0; i < n; i++)
		p[i] = rand();
}

/*
 * Turns a HELLO body of 28 or 40 bytes sent on fd into the authenticated 104-byte one
 * (out): the fields (zero-padded to 40), a fresh nonce, the MAC over fd's challenge.
 */
static inline size_t tt_hello_auth(int fd, const uint8_t *body, size_t len, uint8_t *out)
{
	const uint8_t *key;
	size_t klen = tt_key(&key);
	struct tt_conn_auth *a = &tt_auth[fd];

	memset(out, 0, TT_HELLO_AUTH_LEN);
	memcpy(out, body, len < 40 ? len : 40);
	tt_random(a->cnonce, 32);
	memcpy(out + 40, a->cnonce, 32);
	tt_hello_mac(key, klen, a->snonce, a->cnonce, out, a->mac_c);
	memcpy(out + 72, a->mac_c, 32);
	return TT_HELLO_AUTH_LEN;
}

/* Whether a WELCOME body received on fd carries the server's proof of the key. */
static inline int tt_welcome_authentic(int fd, const uint8_t *body, size_t len)
{
	const uint8_t *key;
	size_t klen = tt_key(&key);
	struct tt_conn_auth *a;
	uint8_t mac[32];

	if (fd < 0 || fd >= TT_MAX_FDS || !tt_auth[fd].have || len < TT_WELCOME_AUTH_LEN)
		return 0;
	a = &tt_auth[fd];
	tt_welcome_mac(key, klen, a->snonce, a->cnonce, body, a->mac_c, mac);
	return !memcmp(mac, body + 34, 32);
}

/*
 * SERVER_SIGNAL body (8 bytes): u32 signo, u32 0. Only SIGPIPE (13) and SIGXFSZ (25) are
 * forwarded; the frame's seq is the call's, and it precedes that call's SERVER_REPLY.
 */
#define TT_SIGNAL_LEN 8
static inline size_t tt_signal_put(uint8_t *out, uint32_t signo)
{
	tt_put32(out, signo);
	tt_put32(out + 4, 0);
	return TT_SIGNAL_LEN;
}

/*
 * CLIENT_THREAD body (8 bytes): u32 tid, u32 event (0 started, 1 exited). Not answered. A
 * CLIENT_THREAD_CALL body is u32 tid followed by a CLIENT_SYSTEM_CALL body.
 */
#define TT_THREAD_LEN 8
#define TT_THREAD_STARTED 0u
#define TT_THREAD_EXITED 1u
static inline size_t tt_thread_put(uint8_t *out, uint32_t tid, uint32_t event)
{
	tt_put32(out, tid);
	tt_put32(out + 4, event);
	return TT_THREAD_LEN;
}

/*
 * CLIENT_ATTRS body (48 + 4 n bytes): u32 uid, euid, fsuid, gid, egid, fsgid,
 * u64 fsize_cur, fsize_max (RLIMIT_FSIZE, ~0 = infinity), u32 ngroups (<= 64), u32 0,
 * ngroups x u32. Not answered.
 */
#define TT_MAX_GROUPS 64
static inline size_t tt_attrs_put(uint8_t *out, const uint32_t ids[6], uint64_t fsize_cur,
				  uint64_t fsize_max, const uint32_t *groups, uint32_t ngroups)
{
	size_t i;

	for (i = 0; i < 6; i++)
		tt_put32(out + 4 * i, ids[i]);
	tt_put64(out + 24, fsize_cur);
	tt_put64(out + 32, fsize_max);
	tt_put32(out + 40, ngroups);
	tt_put32(out + 44, 0);
	for (i = 0; i < ngroups; i++)
		tt_put32(out + 48 + 4 * i, groups[i]);
	return 48 + 4 * ngroups;
}

/* The checksum of SINK bodies (rust/src/codec.rs sum64, chained over bodies). */
static inline uint64_t tt_sum64(uint64_t s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 8 <= n; i += 8)
		s = (((s << 5) | (s >> 59)) ^ tt_get64(p + i)) * 0x9E3779B97F4A7C15ull;
	if (i < n) {
		uint8_t w[8] = { 0 };

		memcpy(w, p + i, n - i);
		w[7] = n - i;
		s = (((s << 5) | (s >> 59)) ^ tt_get64(w)) * 0x9E3779B97F4A7C15ull;
	}
	return s;
}

static inline uint64_t tt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline long tt_env(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static inline size_t tt_split(void) { return tt_env("TETHER_SPLIT", 3584); }

/* See tt_connect_raw(); set up before main(), so that kselftest's forked cases share it. */
static unsigned int *tt_port_cursor;

__attribute__((constructor)) static void tt_port_cursor_init(void)
{
	tt_port_cursor = mmap(NULL, sizeof(*tt_port_cursor), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tt_port_cursor == MAP_FAILED) {
		static unsigned int local;

		tt_port_cursor = &local;
	}
	*tt_port_cursor = (unsigned int)getpid() * 7919u;
}

/*
 * The server's IPv4 address when the tests run over TCP (env TETHER_TCP_SERVER, e.g.
 * 10.0.0.1), else NULL: vsock, to the CID the caller names.
 */
static inline const char *tt_tcp_server(void)
{
	const char *v = getenv("TETHER_TCP_SERVER");

	return v && *v ? v : NULL;
}

/*
 * Connects to cid:port (over TCP: to tt_tcp_server():port), from a reserved source port
 * (512..1023 in turn, which needs CAP_NET_BIND_SERVICE) when reserved is set; returns the
 * fd or -errno. The server's CHALLENGE is not read.
 */
static inline int tt_connect_raw(unsigned int cid, unsigned int port, int reserved)
{
	const char *tcp = tt_tcp_server();
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	struct sockaddr_in ai = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(tcp ? AF_INET : AF_VSOCK, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (fd < TT_MAX_FDS)
		tt_auth[fd].have = 0;
	if (tcp) {
		if (inet_pton(AF_INET, tcp, &ai.sin_addr) != 1) {
			close(fd);
			return -EINVAL;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	}
	if (reserved) {
		struct sockaddr_vm b = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
		struct sockaddr_in bi = { .sin_family = AF_INET };
		int r = -1;

		/* Ports 512..1023 in turn from a cursor shared with forked test cases: the
		 * server may still hold a port's previous connection for a while (a new one
		 * from it would be reset), so a port is used again only after all others. */
		for (int i = 0; i < 512; i++) {
			unsigned int p = 512 + __atomic_fetch_add(tt_port_cursor, 1, __ATOMIC_RELAXED) % 512;

			b.svm_port = p;
			bi.sin_port = htons(p);
			r = tcp ? bind(fd, (struct sockaddr *)&bi, sizeof(bi))
				: bind(fd, (struct sockaddr *)&b, sizeof(b));
			if (r == 0 || errno != EADDRINUSE)
				break;
		}
		if (r < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
	}
	if ((tcp ? connect(fd, (struct sockaddr *)&ai, sizeof(ai))
		 : connect(fd, (struct sockaddr *)&a, sizeof(a))) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (tcp) {
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* Writes all of buf in writes of at most tt_split() bytes; 0 or -errno. */
static inline int tt_send(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t chunk = tt_split();

	while (len) {
		ssize_t n = send(fd, p, len < chunk ? len : chunk, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Sends one frame (header + body). A HELLO of 28 or 40 bytes on a connection opened with
 * tt_connect() goes out authenticated (tt_hello_auth: 104 bytes).
 */
static inline int tt_send_frame(int fd, uint16_t kind, uint32_t flags, uint32_t session,
				uint64_t seq, const void *body, uint32_t len)
{
	uint8_t auth[TT_HELLO_AUTH_LEN];
	uint8_t *buf;
	int r;

	if (kind == TT_HELLO && (len == 28 || len == 40) && fd >= 0 && fd < TT_MAX_FDS &&
	    tt_auth[fd].have)
		len = tt_hello_auth(fd, body, len, auth), body = auth;
	buf = malloc(TT_HDR_LEN + (size_t)len);
	if (!buf)
		return -ENOMEM;
	tt_hdr_put(buf, kind, flags, len, session, seq);
	if (len)
		memcpy(buf + TT_HDR_LEN, body, len);
	r = tt_send(fd, buf, TT_HDR_LEN + (size_t)len);
	free(buf);
	return r;
}

/*
 * Reads exactly len bytes within timeout_ms. Returns len, the bytes read before EOF
 * (0 on an immediate EOF), -ETIMEDOUT, or -errno (e.g. -ECONNRESET).
 */
static inline ssize_t tt_recv(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t end = tt_now_ns() + timeout_ms * 1000000ull;
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = tt_now_ns();
		ssize_t n;

		if (now >= end)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (end - now) / 1000000 + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		n = recv(fd, (uint8_t *)buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return got;
		got += n;
	}
	return got;
}

/*
 * Receives one frame into h and body (at most max bytes). Heartbeats the server sends
 * on its own (no F_REPLY) are answered and skipped. Returns the body length, 0 for
 * an empty body, -EPIPE on EOF, -EPROTO for a malformed frame, -EMSGSIZE when the body
 * does not fit, or another -errno.
 */
static inline ssize_t tt_recv_frame(int fd, struct tt_hdr *h, void *body, size_t max,
				    int timeout_ms)
{
	uint8_t raw[TT_HDR_LEN];
	ssize_t n;

	for (;;) {
		n = tt_recv(fd, raw, TT_HDR_LEN, timeout_ms);
		if (n >= 0 && n < TT_HDR_LEN)
			return -EPIPE;
		if (n < 0)
			return n;
		tt_hdr_get(raw, h);
		if (memcmp(raw, "TTHR", 4) || h->version != TT_VERSION)
			return -EPROTO;
		if (h->len > max)
			return -EMSGSIZE;
		n = tt_recv(fd, body, h->len, timeout_ms);
		if (n >= 0 && (size_t)n < h->len)
			return -EPIPE;
		if (n < 0)
			return n;
		if (h->kind == TT_HEARTBEAT && !(h->flags & TT_F_REPLY)) {
			n = tt_send_frame(fd, TT_HEARTBEAT, TT_F_REPLY, h->session, h->seq, NULL, 0);
			if (n < 0)
				return n;
			continue;
		}
		return h->len;
	}
}

/*
 * Connects like tt_connect_raw() (reserved port when root, or TETHER_RESERVED=1) and reads
 * the server's CHALLENGE: the fd, -EPROTO when the first frame is something else (its
 * header is then in *first when first is not NULL), or -errno.
 */
static inline int tt_connect2(unsigned int cid, unsigned int port, struct tt_hdr *first)
{
	int fd = tt_connect_raw(cid, port, tt_env("TETHER_RESERVED", geteuid() == 0));
	uint8_t body[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	ssize_t n;

	if (fd < 0)
		return fd;
	n = tt_recv_frame(fd, &h, body, sizeof(body), 10000);
	if (n >= 0 && first)
		*first = h;
	if (n >= 0 && (h.kind != TT_CHALLENGE || n < TT_CHALLENGE_LEN || fd >= TT_MAX_FDS))
		n = -EPROTO;
	if (n < 0) {
		close(fd);
		return n;
	}
	memcpy(tt_auth[fd].snonce, body, 32);
	tt_auth[fd].have = 1;
	return fd;
}

static inline int tt_connect(unsigned int cid, unsigned int port)
{
	return tt_connect2(cid, port, NULL);
}

/* HELLO of a client before crash recovery (28 bytes, kinds 1..12); then WELCOME into w.
 * 0 or -errno (-EPROTO: bad answer). */
static inline int tt_handshake(int fd, uint32_t max_frame, struct tt_welcome *w)
{
	uint8_t body[TT_HANDSHAKE_MAX];
	struct tt_hdr h;
	ssize_t n;

	tt_hello_put(body, 1, 1, 0x7e57000000000000ull | (uint64_t)getpid(), max_frame,
		     tt_env("TETHER_HEARTBEAT_MS", 500), TT_V1_KINDS);
	n = tt_send_frame(fd, TT_HELLO, 0, 0, 1, body, 28);
	if (n < 0)
		return n;
	n = tt_recv_frame(fd, &h, body, sizeof(body), 10000);
	if (n < 0)
		return n;
	if (h.kind != TT_WELCOME || h.seq != 1 || !tt_welcome_get(body, n, w))
		return -EPROTO;
	if (!tt_welcome_authentic(fd, body, n))
		return -EACCES;
	return 0;
}

/* Ends session `session` for good on fd (ERROR goodbye): the server does not keep it for a
 * resume. The caller still closes fd. */
static inline int tt_goodbye(int fd, uint32_t session)
{
	uint8_t b[8];

	tt_put32(b, TT_E_GOODBYE);
	tt_put32(b + 4, 0);
	return tt_send_frame(fd, TT_ERROR, 0, session, 1, b, 8);
}

/* One heartbeat round trip; 0 when answered (F_REPLY, same seq) in time. */
static inline int tt_heartbeat(int fd, uint32_t session, uint64_t seq, int timeout_ms)
{
	uint8_t body[64];
	struct tt_hdr h;
	ssize_t n = tt_send_frame(fd, TT_HEARTBEAT, 0, session, seq, NULL, 0);

	if (n < 0)
		return n;
	n = tt_recv_frame(fd, &h, body, sizeof(body), timeout_ms);
	if (n < 0)
		return n;
	if (h.kind != TT_HEARTBEAT || !(h.flags & TT_F_REPLY) || h.seq != seq || n != 0)
		return -EPROTO;
	return 0;
}

#endif
