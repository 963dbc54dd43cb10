// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C shims for what kernel Rust cannot express yet (Linux 7.3): kernel vsock sockets
 * and an owned workqueue. Compiled into both tether modules (each includes this file from
 * its own directory); the Rust side is rust/kernel/transport.rs.
 */
#include <linux/atomic.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/vm_sockets.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/sock.h>

int tether_vsock_listen(u32 port, int backlog, struct socket **res);
int tether_vsock_accept(struct socket *lsock, struct socket **res, u32 *peer_cid, u32 *peer_port);
int tether_vsock_connect(u32 cid, u32 port, bool reserved, struct socket **res);
int tether_sock_send(struct socket *sock, const void *buf, size_t len);
int tether_sock_send_nowait(struct socket *sock, const void *buf, size_t len);
int tether_sock_recv(struct socket *sock, void *buf, size_t len);
void tether_sock_set_timeouts(struct socket *sock, unsigned int rcv_ms, unsigned int snd_ms);
void tether_sock_shutdown(struct socket *sock);
void tether_sock_release(struct socket *sock);
struct workqueue_struct *tether_wq_alloc(const char *name);

static void tether_vsock_addr(struct sockaddr_vm *addr, u32 cid, u32 port)
{
	memset(addr, 0, sizeof(*addr));
	addr->svm_family = AF_VSOCK;
	addr->svm_cid = cid;
	addr->svm_port = port;
}

int tether_vsock_listen(u32 port, int backlog, struct socket **res)
{
	struct sockaddr_vm addr;
	int err;

	err = sock_create_kern(&init_net, AF_VSOCK, SOCK_STREAM, 0, res);
	if (err)
		return err;
	tether_vsock_addr(&addr, VMADDR_CID_ANY, port);
	err = kernel_bind(*res, (struct sockaddr_unsized *)&addr, sizeof(addr));
	if (!err)
		err = kernel_listen(*res, backlog);
	if (err) {
		sock_release(*res);
		*res = NULL;
	}
	return err;
}

int tether_vsock_accept(struct socket *lsock, struct socket **res, u32 *peer_cid, u32 *peer_port)
{
	struct sockaddr_vm addr;
	int err;

	err = kernel_accept(lsock, res, 0);
	if (err)
		return err;
	err = kernel_getpeername(*res, (struct sockaddr *)&addr);
	if (err < 0) {
		sock_release(*res);
		*res = NULL;
		return err;
	}
	*peer_cid = addr.svm_cid;
	*peer_port = addr.svm_port;
	return 0;
}

/*
 * Reserved source ports a client binds (like NFS's "secure" ports), taken in turn from a
 * cursor that starts at a random port: a port is used again only after all the others,
 * because the server may still hold the old connection of a port for a while after the
 * client closed it (a new connection from that port would be reset).
 */
#define TETHER_RESERVED_HI 1023
#define TETHER_RESERVED_LO 512
#define TETHER_RESERVED_N (TETHER_RESERVED_HI - TETHER_RESERVED_LO + 1)

static atomic_t tether_port_cursor = ATOMIC_INIT(-1);

/*
 * Binds sock to a free reserved port (< 1024: only a holder of CAP_NET_BIND_SERVICE, such as
 * this module, may): 0, or -EADDRINUSE when none is free.
 */
static int tether_vsock_bind_reserved(struct socket *sock)
{
	struct sockaddr_vm addr;
	unsigned int i, start;
	int err = -EADDRINUSE;

	atomic_cmpxchg(&tether_port_cursor, -1, get_random_u32_below(TETHER_RESERVED_N));
	for (i = 0; i < TETHER_RESERVED_N; i++) {
		start = (unsigned int)atomic_inc_return(&tether_port_cursor);
		tether_vsock_addr(&addr, VMADDR_CID_ANY,
				  TETHER_RESERVED_LO + start % TETHER_RESERVED_N);
		err = kernel_bind(sock, (struct sockaddr_unsized *)&addr, sizeof(addr));
		if (err != -EADDRINUSE)
			break;
	}
	return err;
}

/* Connects to cid:port, from a reserved source port when reserved is set. */
int tether_vsock_connect(u32 cid, u32 port, bool reserved, struct socket **res)
{
	struct sockaddr_vm addr;
	int err;

	err = sock_create_kern(&init_net, AF_VSOCK, SOCK_STREAM, 0, res);
	if (err)
		return err;
	if (reserved) {
		err = tether_vsock_bind_reserved(*res);
		if (err) {
			sock_release(*res);
			*res = NULL;
			return err;
		}
	}
	tether_vsock_addr(&addr, cid, port);
	err = kernel_connect(*res, (struct sockaddr_unsized *)&addr, sizeof(addr), 0);
	if (err) {
		sock_release(*res);
		*res = NULL;
	}
	return err;
}

/* One sendmsg; returns bytes sent or -errno. The caller loops and splits. */
int tether_sock_send(struct socket *sock, const void *buf, size_t len)
{
	struct kvec vec = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };

	return kernel_sendmsg(sock, &msg, &vec, 1, len);
}

/* One sendmsg that never waits (no send credit: -EAGAIN); bytes sent or -errno. */
int tether_sock_send_nowait(struct socket *sock, const void *buf, size_t len)
{
	struct kvec vec = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | MSG_DONTWAIT };

	return kernel_sendmsg(sock, &msg, &vec, 1, len);
}

/* One recvmsg; returns bytes received, 0 at end of stream, -EAGAIN on timeout, -errno. */
int tether_sock_recv(struct socket *sock, void *buf, size_t len)
{
	struct kvec vec = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = 0 };

	return kernel_recvmsg(sock, &msg, &vec, 1, len, 0);
}

static long tether_timeout(unsigned int ms)
{
	return ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT;
}

/* Receive (and accept) and send timeouts; 0 waits forever. */
void tether_sock_set_timeouts(struct socket *sock, unsigned int rcv_ms, unsigned int snd_ms)
{
	WRITE_ONCE(sock->sk->sk_rcvtimeo, tether_timeout(rcv_ms));
	WRITE_ONCE(sock->sk->sk_sndtimeo, tether_timeout(snd_ms));
}

void tether_sock_shutdown(struct socket *sock)
{
	kernel_sock_shutdown(sock, SHUT_RDWR);
}

void tether_sock_release(struct socket *sock)
{
	sock_release(sock);
}

struct workqueue_struct *tether_wq_alloc(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
}
