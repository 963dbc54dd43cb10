// SPDX-License-Identifier: GPL-2.0
/*
 * Shared-key authentication, C part (both modules include this file from their shim.c;
 * the Rust side is rust/kernel/auth.rs): the key file, the key (kept here, never printed,
 * wiped at unload), HMAC-SHA256 from the kernel's lib/crypto, and a constant-time compare.
 */
#include <crypto/sha2.h>
#include <crypto/utils.h>
#include <linux/fs.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/string.h>

static char *key_file = "/etc/tether/key";
module_param(key_file, charp, 0444);
MODULE_PARM_DESC(key_file, "file holding the shared secret both tether modules authenticate "
		 "each other with (16..256 bytes, trailing white space ignored; not readable by "
		 "others); read at load, never printed");

#define TETHER_KEY_MAX 256
static u8 tether_key[TETHER_KEY_MAX];
static size_t tether_key_len;

const char *tether_key_file(void);
int tether_key_read(u8 *buf, size_t max);
void tether_key_set(const u8 *key, size_t len);
void tether_key_clear(void);
void tether_wipe(void *buf, size_t len);
void tether_hmac(const u8 *const *parts, const size_t *lens, unsigned int n, u8 *out);
bool tether_mac_eq(const u8 *a, const u8 *b);
void tether_random_bytes(u8 *buf, size_t len);

const char *tether_key_file(void)
{
	return key_file ? key_file : "";
}

/*
 * Reads the key file into buf: the number of bytes read, or -ENOENT (missing), -EACCES
 * (readable or writable by others), -EINVAL (not a regular file), -EFBIG (more than max
 * bytes), another -errno.
 */
int tether_key_read(u8 *buf, size_t max)
{
	struct file *f;
	umode_t mode;
	loff_t pos = 0;
	ssize_t n;
	size_t got = 0;
	int ret = 0;

	if (!key_file || !*key_file)
		return -ENOENT;
	f = filp_open(key_file, O_RDONLY, 0);
	if (IS_ERR(f))
		return PTR_ERR(f);
	mode = file_inode(f)->i_mode;
	if (!S_ISREG(mode))
		ret = -EINVAL;
	else if (mode & 0007)
		ret = -EACCES;
	while (!ret) {
		n = kernel_read(f, buf + got, max - got, &pos);
		if (n < 0)
			ret = n;
		else if (n == 0)
			break;
		else if ((got += n) == max) {
			u8 extra;

			n = kernel_read(f, &extra, 1, &pos);
			ret = n > 0 ? -EFBIG : (n < 0 ? n : 0);
			memzero_explicit(&extra, 1);
			break;
		}
	}
	fput(f);
	return ret ? ret : (int)got;
}

void tether_key_set(const u8 *key, size_t len)
{
	if (len > TETHER_KEY_MAX)
		len = TETHER_KEY_MAX;
	memcpy(tether_key, key, len);
	tether_key_len = len;
}

void tether_key_clear(void)
{
	memzero_explicit(tether_key, sizeof(tether_key));
	tether_key_len = 0;
}

void tether_wipe(void *buf, size_t len)
{
	memzero_explicit(buf, len);
}

/* HMAC-SHA256 under the key of the concatenation of parts[0..n) into out[32]. */
void tether_hmac(const u8 *const *parts, const size_t *lens, unsigned int n, u8 *out)
{
	struct hmac_sha256_ctx ctx;
	unsigned int i;

	hmac_sha256_init_usingrawkey(&ctx, tether_key, tether_key_len);
	for (i = 0; i < n; i++)
		hmac_sha256_update(&ctx, parts[i], lens[i]);
	hmac_sha256_final(&ctx, out);
}

bool tether_mac_eq(const u8 *a, const u8 *b)
{
	return !crypto_memneq(a, b, SHA256_DIGEST_SIZE);
}

void tether_random_bytes(u8 *buf, size_t len)
{
	get_random_bytes(buf, len);
}

#include <linux/ratelimit.h>

/* Refusals of hostile or misconfigured peers: at most 20 lines per 5 s per module. */
static DEFINE_RATELIMIT_STATE(tether_refusal_rs, 5 * HZ, 20);

bool tether_refusal_ratelimit(void);
bool tether_refusal_ratelimit(void)
{
	return __ratelimit(&tether_refusal_rs);
}

/* Connections that broke the protocol: at most 100 lines per 5 s per module. */
static DEFINE_RATELIMIT_STATE(tether_badframe_rs, 5 * HZ, 100);

bool tether_badframe_ratelimit(void);
bool tether_badframe_ratelimit(void)
{
	return __ratelimit(&tether_badframe_rs);
}
