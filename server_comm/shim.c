// SPDX-License-Identifier: GPL-2.0
/*
 * C part of tether_server.ko: the shared vsock shim and the one parameter kernel Rust
 * cannot declare yet (an array).
 */
#include <linux/moduleparam.h>
#include "../rust/kernel/vsock_shim.c"

static unsigned int allowed_cids[16];
static int nr_allowed_cids;
module_param_array(allowed_cids, uint, &nr_allowed_cids, 0444);
MODULE_PARM_DESC(allowed_cids, "vsock CIDs allowed to connect, comma-separated (empty: none)");

bool tether_cid_allowed(u32 cid);
bool tether_cid_allowed(u32 cid)
{
	int i;

	for (i = 0; i < nr_allowed_cids; i++)
		if (allowed_cids[i] == cid)
			return true;
	return false;
}
