// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C shims for what kernel Rust cannot express yet (Linux 7.3): kernel vsock and TCP
 * (IPv4) sockets and an owned workqueue. Compiled into both tether modules (each includes this file from
 * its own directory); the Rust side is rust/kernel/transport.rs.
 */
#include <linux/atomic.h>
#include <linux/in.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/vm_sockets.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/tcp.h>

int tether_vsock_listen(u32 port, int backlog, struct socket **res);
int tether_tcp_listen(u32 port, int backlog, struct socket **res);
int tether_sock_accept(struct socket *lsock, struct socket **res, u32 *peer_cid, u8 *peer_ip,
		       u32 *peer_port);
int tether_vsock_connect(u32 cid, u32 port, bool reserved, struct socket **res);
int tether_tcp_connect(const u8 *ip, u32 port, bool reserved, unsigned int timeout_ms,
		       struct socket **res);
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

static void tether_inet_addr(struct sockaddr_in *addr, __be32 ip, u32 port)
{
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = ip;
	addr->sin_port = htons(port);
}

/* A new kernel TCP socket for port (1..65535, else -EINVAL). */
static int tether_tcp_socket(u32 port, struct socket **res)
{
	if (port == 0 || port > U16_MAX)
		return -EINVAL;
	return sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP, res);
}

/* Binds *res to addr and listens; on failure releases it (*res = NULL). */
static int tether_bind_listen(struct socket **res, void *addr, int len, int backlog)
{
	int err = kernel_bind(*res, (struct sockaddr_unsized *)addr, len);

	if (!err)
		err = kernel_listen(*res, backlog);
	if (err) {
		sock_release(*res);
		*res = NULL;
	}
	return err;
}

int tether_vsock_listen(u32 port, int backlog, struct socket **res)
{
	struct sockaddr_vm addr;
	int err;

	err = sock_create_kern(&init_net, AF_VSOCK, SOCK_STREAM, 0, res);
	if (err)
		return err;
	tether_vsock_addr(&addr, VMADDR_CID_ANY, port);
	return tether_bind_listen(res, &addr, sizeof(addr), backlog);
}

/* A TCP socket listening on port of every local IPv4 address. */
int tether_tcp_listen(u32 port, int backlog, struct socket **res)
{
	struct sockaddr_in addr;
	int err = tether_tcp_socket(port, res);

	if (err)
		return err;
	/* A restarted server listens again at once, while old connections linger. */
	sock_set_reuseaddr((*res)->sk);
	tether_inet_addr(&addr, htonl(INADDR_ANY), port);
	return tether_bind_listen(res, &addr, sizeof(addr), backlog);
}

/*
 * Accepts one connection on a vsock or TCP listener and reports the peer: its CID (vsock;
 * peer_ip untouched) or its IPv4 address (TCP; peer_cid set to 0), and its source port.
 */
int tether_sock_accept(struct socket *lsock, struct socket **res, u32 *peer_cid, u8 *peer_ip,
		       u32 *peer_port)
{
	struct sockaddr_storage ss;
	int err;

	err = kernel_accept(lsock, res, 0);
	if (err)
		return err;
	err = kernel_getpeername(*res, (struct sockaddr *)&ss);
	if (err < 0)
		goto fail;
	switch (ss.ss_family) {
	case AF_VSOCK: {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&ss;

		*peer_cid = vm->svm_cid;
		*peer_port = vm->svm_port;
		return 0;
	}
	case AF_INET: {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		*peer_cid = 0;
		memcpy(peer_ip, &in->sin_addr.s_addr, 4);
		*peer_port = ntohs(in->sin_port);
		/* Frames are written whole: no waiting for more bytes to coalesce. */
		tcp_sock_set_nodelay((*res)->sk);
		return 0;
	}
	}
	err = -EAFNOSUPPORT;
fail:
	sock_release(*res);
	*res = NULL;
	return err;
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
 * Binds sock (vsock or IPv4) to a free reserved port (< 1024: only a holder of
 * CAP_NET_BIND_SERVICE, such as this module, may): 0, or -EADDRINUSE when none is free.
 */
static int tether_bind_reserved(struct socket *sock, int family)
{
	struct sockaddr_storage ss;
	unsigned int i, start, port;
	int err = -EADDRINUSE, len;

	atomic_cmpxchg(&tether_port_cursor, -1, get_random_u32_below(TETHER_RESERVED_N));
	for (i = 0; i < TETHER_RESERVED_N; i++) {
		start = (unsigned int)atomic_inc_return(&tether_port_cursor);
		port = TETHER_RESERVED_LO + start % TETHER_RESERVED_N;
		memset(&ss, 0, sizeof(ss));
		if (family == AF_VSOCK) {
			tether_vsock_addr((struct sockaddr_vm *)&ss, VMADDR_CID_ANY, port);
			len = sizeof(struct sockaddr_vm);
		} else {
			tether_inet_addr((struct sockaddr_in *)&ss, htonl(INADDR_ANY), port);
			len = sizeof(struct sockaddr_in);
		}
		err = kernel_bind(sock, (struct sockaddr_unsized *)&ss, len);
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
		err = tether_bind_reserved(*res, AF_VSOCK);
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

static long tether_timeout(unsigned int ms)
{
	return ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT;
}

/*
 * Connects to ip:port over TCP, from a reserved source port when reserved is set, giving
 * up after timeout_ms (a server that is down does not answer SYNs: without a limit the
 * connect would wait out every retransmission, minutes).
 */
int tether_tcp_connect(const u8 *ip, u32 port, bool reserved, unsigned int timeout_ms,
		       struct socket **res)
{
	struct sockaddr_in addr;
	__be32 ip4;
	int err = tether_tcp_socket(port, res);

	if (err)
		return err;
	if (reserved)
		err = tether_bind_reserved(*res, AF_INET);
	if (!err) {
		memcpy(&ip4, ip, 4);
		tether_inet_addr(&addr, ip4, port);
		WRITE_ONCE((*res)->sk->sk_sndtimeo, tether_timeout(timeout_ms));
		err = kernel_connect(*res, (struct sockaddr_unsized *)&addr, sizeof(addr), 0);
		/* Still in SYN_SENT when the time ran out. */
		if (err == -EINPROGRESS)
			err = -ETIMEDOUT;
	}
	if (err) {
		sock_release(*res);
		*res = NULL;
		return err;
	}
	tcp_sock_set_nodelay((*res)->sk);
	return 0;
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
