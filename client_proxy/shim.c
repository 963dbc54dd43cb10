// SPDX-License-Identifier: GPL-2.0
/* C part of tether_client.ko: the shared vsock shim. */
#include "../rust/kernel/vsock_shim.c"
