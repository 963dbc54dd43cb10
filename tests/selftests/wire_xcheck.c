// SPDX-License-Identifier: GPL-2.0
/* The C side of the wire cross-check (see tests/xcheck/src/main.rs): the same table. */
#include <stdio.h>
#include "tether_wire.h"
#include "../../userspace-tools/tether_abi.h"

static void hex(const char *tag, const uint8_t *b, size_t n)
{
	printf("%s ", tag);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

int main(void)
{
	static uint8_t data[70000];
	static const size_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 3584, 65536, 70000 };
	uint8_t b[128];
	struct tt_welcome w;
	uint64_t s = TT_SUM_INIT;

	tt_hdr_put(b, TT_HELLO, 0, 28, 0, 1);
	hex("hdr", b, TT_HDR_LEN);
	tt_hdr_put(b, TT_HEARTBEAT, TT_F_REPLY, 0, 7, UINT64_MAX);
	hex("hdr", b, TT_HDR_LEN);
	tt_hdr_put(b, TT_SINK, TT_F_ACK_REQ, 65536, 0xdeadbeef, 0x0102030405060708ull);
	hex("hdr", b, TT_HDR_LEN);
	hex("hello", b, tt_hello_put2(b, 1, 1, 0x0102030405060708ull, 1 << 20, 500, TT_ALL_KINDS,
				      0x0a0b0c0d, 0x8877665544332211ull));
	/* WELCOME: the C side only decodes; re-encode the decoded fields by hand. */
	memset(b, 0, sizeof(b));
	tt_put16(b, 1);
	tt_put64(b + 2, 0x1122334455667788ull);
	tt_put32(b + 10, 65536);
	tt_put32(b + 14, 250);
	tt_put32(b + 18, 9);
	tt_put64(b + 22, 0x1fe);
	tt_put32(b + 30, TT_W_RESUMED);
	if (!tt_welcome_get(b, 34, &w) || w.version != 1 || w.boot_verifier != 0x1122334455667788ull ||
	    w.max_frame != 65536 || w.heartbeat_ms != 250 || w.session != 9 || w.kinds != 0x1fe ||
	    w.flags != TT_W_RESUMED)
		return 1;
	if (!tt_welcome_get(b, 30, &w) || w.flags != 0)
		return 1;
	hex("welcome", b, 34);
	tt_put32(b, TT_E_TOO_LONG);
	tt_put32(b + 4, 4097);
	hex("error", b, 8);
	tt_put64(b, 1 << 20);
	tt_put64(b + 8, 0xfeed);
	hex("sinkack", b, 16);
	{
		struct tt_flushed f;

		tt_put64(b, 0x0102030405060708ull);
		tt_put64(b + 8, 0xf0e0d0c0b0a09080ull);
		if (!tt_flushed_get(b, 16, &f) || f.up_to_seq != 0x0102030405060708ull ||
		    f.boot_verifier != 0xf0e0d0c0b0a09080ull || tt_flushed_get(b, 15, &f))
			return 1;
		hex("flushed", b, 16);
	}
	tt_hdr_put(b, TT_SERVER_FLUSHED, 0, 16, 3, 42);
	hex("hdr", b, TT_HDR_LEN);
	for (uint32_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)((i * 131u) >> 3);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		printf("sum64 %zu %016llx\n", lens[i],
		       (unsigned long long)tt_sum64(TT_SUM_INIT, data, lens[i]));
	for (size_t off = 0; off < 65536; off += 4096)
		s = tt_sum64(s, data + off, 4096);
	printf("sum64 chained %016llx\n", (unsigned long long)s);
	printf("allkinds %llx\n", (unsigned long long)TT_ALL_KINDS);
	hex("signal", b, tt_signal_put(b, 25));
	hex("thread", b, tt_thread_put(b, 77, TT_THREAD_EXITED));
	{
		static const uint32_t ids[6] = { 1000, 0, 0, 1000, 0, 100 };
		static const uint32_t groups[3] = { 0, 24, 1000 };
		uint8_t a[48 + 4 * TT_MAX_GROUPS];

		hex("attrs", a, tt_attrs_put(a, ids, 4096, ~0ull, groups, 3));
	}
	{
		static const uint64_t args[6] = { 022, 1, UINT64_MAX, 0, 0x8000000000000000ull, 7 };
		int64_t ret = -13;

		hex("syscall", b, tt_syscall_put(b, 95, args));
		memset(b, 0, 16);
		memcpy(b, &ret, 8);
		hex("reply", b, 16);
	}
	for (size_t i = 0; i < sizeof(tether_calls) / sizeof(tether_calls[0]); i++)
		printf("call %u %u %s\n", tether_calls[i].nr, tether_calls[i].effect,
		       tether_calls[i].name);
	{
		static const uint8_t key[] = "tether-test-key-0123456789abcdef";
		uint8_t sn[32], cn[32], h[TT_HELLO_AUTH_LEN], w2[TT_WELCOME_AUTH_LEN], lk[131];
		const void *parts[3] = { "x", "x", "x" };
		const size_t lens[3] = { 1, 1, 1 };

		for (int i = 0; i < 32; i++)
			sn[i] = i, cn[i] = 0xff - i;
		memcpy(b, sn, 32);
		tt_put32(b + 32, TT_C_AUTH);
		tt_put32(b + 36, 0);
		hex("challenge", b, TT_CHALLENGE_LEN);
		tt_hello_put2(h, 1, 1, 0x0102030405060708ull, 1 << 20, 500, TT_ALL_KINDS,
			      0x0a0b0c0d, 0x8877665544332211ull);
		memcpy(h + 40, cn, 32);
		tt_hello_mac(key, sizeof(key) - 1, sn, cn, h, h + 72);
		hex("hello_auth", h, TT_HELLO_AUTH_LEN);
		memset(w2, 0, sizeof(w2));
		tt_put16(w2, 1);
		tt_put64(w2 + 2, 0x1122334455667788ull);
		tt_put32(w2 + 10, 65536);
		tt_put32(w2 + 14, 250);
		tt_put32(w2 + 18, 9);
		tt_put64(w2 + 22, 0x1fe);
		tt_put32(w2 + 30, TT_W_RESUMED);
		tt_welcome_mac(key, sizeof(key) - 1, sn, cn, w2, h + 72, w2 + 34);
		hex("welcome_auth", w2, TT_WELCOME_AUTH_LEN);
		memset(lk, 0xaa, sizeof(lk));
		tt_hmac(lk, sizeof(lk), parts, lens, 3, b);
		hex("hmac_long_key", b, 32);
	}
	return 0;
}
