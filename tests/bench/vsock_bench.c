// SPDX-License-Identifier: GPL-2.0
/*
 * Raw userspace baseline between two VMs over AF_VSOCK (every send split into writes of at
 * most TETHER_SPLIT = 3584 bytes, the vhost-device-vsock 0.3.0 limit) or, with
 * TETHER_TCP_SERVER=IPV4 in the client's environment, over TCP (TCP_NODELAY; set
 * TETHER_SPLIT large for whole sends).
 *   vsock_bench server PORT                       serve until killed (vsock and TCP PORT)
 *   vsock_bench ping CID PORT COUNT SIZE          ping-pong: min/p50/p99 round trip
 *   vsock_bench bulk CID PORT TOTAL MSG           bulk send, server acks bytes + checksum
 *   vsock_bench blast CID PORT TOTAL MSG          bulk send with no per-byte work on either
 *                                                 side (the server counts bytes); the stream
 *                                                 is verified by a separate bulk pass
 * Client output matches the module's debugfs bench lines:
 *   ping count=N size=S min_ns=… p50_ns=… p99_ns=…
 *   bulk bytes=N msg=S ns=… mb_per_s=… verified=0|1   (blast: verified=0, bytes counted)
 */
#include <stdio.h>
#include <signal.h>
#include "../selftests/tether_wire.h"

enum { M_PING = 1, M_BULK = 2, M_BLAST = 3 };

static void die(const char *what, int err)
{
	fprintf(stderr, "vsock_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static void recv_all(int fd, void *buf, size_t len)
{
	ssize_t n = tt_recv(fd, buf, len, 60000);

	if (n < 0)
		die("recv", -n);
	if ((size_t)n != len)
		die("recv", EPIPE);
}

static void serve_one(int fd)
{
	uint8_t req[16], *buf;
	uint32_t mode, msg;
	uint64_t count, sum = TT_SUM_INIT, done = 0;

	recv_all(fd, req, 16);
	mode = tt_get32(req);
	msg = tt_get32(req + 4);
	count = tt_get64(req + 8);
	if (msg == 0 || msg > (1u << 20))
		die("request", EINVAL);
	buf = malloc(msg);
	if (!buf)
		die("malloc", ENOMEM);
	if (mode == M_PING) {
		for (; done < count; done++) {
			recv_all(fd, buf, msg);
			if (tt_send(fd, buf, msg))
				die("send", errno);
		}
	} else {
		while (done < count) {
			size_t n = count - done < msg ? count - done : msg;

			if (mode == M_BLAST) {
				ssize_t r = recv(fd, buf, n, 0);

				if (r <= 0)
					die("recv", r < 0 ? errno : EPIPE);
				n = r;
			} else {
				recv_all(fd, buf, n);
				sum = tt_sum64(sum, buf, n);
			}
			done += n;
		}
		tt_put64(req, done);
		tt_put64(req + 8, sum);
		if (tt_send(fd, req, 16))
			die("send", errno);
	}
	free(buf);
}

static int serve(unsigned int port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	struct sockaddr_in ai = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_VSOCK, SOCK_STREAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 8))
		die("listen", errno);
	signal(SIGCHLD, SIG_IGN);
	/* TCP on the same port, served by a child (no TCP when the VM has no IPv4). */
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (t >= 0 && !bind(t, (struct sockaddr *)&ai, sizeof(ai)) && !listen(t, 8) && fork() == 0) {
		close(s);
		s = t;
	} else if (t >= 0) {
		close(t);
	}
	for (;;) {
		int fd = accept(s, NULL, NULL);

		if (fd < 0)
			continue;
		if (fork() == 0) {
			close(s);
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			serve_one(fd);
			exit(0);
		}
		close(fd);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void request(int fd, uint32_t mode, uint32_t msg, uint64_t count)
{
	uint8_t req[16];

	tt_put32(req, mode);
	tt_put32(req + 4, msg);
	tt_put64(req + 8, count);
	if (tt_send(fd, req, 16))
		die("send", errno);
}

static void ping(int fd, uint64_t count, uint32_t size)
{
	uint64_t *rtt = calloc(count, sizeof(*rtt));
	uint8_t *out = malloc(size), *in = malloc(size);

	if (!rtt || !out || !in || !count)
		die("setup", ENOMEM);
	request(fd, M_PING, size, count);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t t0 = tt_now_ns();

		memset(out, (int)i, size);
		if (tt_send(fd, out, size))
			die("send", errno);
		recv_all(fd, in, size);
		rtt[i] = tt_now_ns() - t0;
		if (memcmp(out, in, size))
			die("ping reply differs", EPROTO);
	}
	qsort(rtt, count, sizeof(*rtt), cmp_u64);
	printf("ping count=%llu size=%u min_ns=%llu p50_ns=%llu p99_ns=%llu\n",
	       (unsigned long long)count, size, (unsigned long long)rtt[0],
	       (unsigned long long)rtt[count / 2], (unsigned long long)rtt[count * 99 / 100]);
}

static void bulk(int fd, uint64_t total, uint32_t msg, int blast)
{
	uint8_t *buf = malloc(msg), ack[16];
	uint64_t sum = TT_SUM_INIT, sent = 0, t0, ns;

	if (!buf)
		die("malloc", ENOMEM);
	for (uint32_t i = 0; i < msg; i++)
		buf[i] = i * 131 + 7;
	request(fd, blast ? M_BLAST : M_BULK, msg, total);
	t0 = tt_now_ns();
	while (sent < total) {
		size_t n = total - sent < msg ? total - sent : msg;

		if (!blast) {
			buf[0] = sent >> 16;	/* vary the content a little */
			sum = tt_sum64(sum, buf, n);
		}
		if (tt_send(fd, buf, n))
			die("send", errno);
		sent += n;
	}
	recv_all(fd, ack, 16);
	ns = tt_now_ns() - t0;
	printf("bulk bytes=%llu msg=%u ns=%llu mb_per_s=%llu verified=%d\n",
	       (unsigned long long)total, msg, (unsigned long long)ns,
	       (unsigned long long)(total * 1000 / (ns ? ns : 1)),
	       !blast && tt_get64(ack) == total && tt_get64(ack + 8) == sum);
	if (blast && tt_get64(ack) != total)
		die("blast: the server counted another byte total", EPROTO);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 3 && !strcmp(argv[1], "server"))
		return serve(atoi(argv[2]));
	if (argc != 6 || (strcmp(argv[1], "ping") && strcmp(argv[1], "bulk") && strcmp(argv[1], "blast"))) {
		fprintf(stderr, "usage: %s server PORT | ping CID PORT COUNT SIZE | bulk|blast CID PORT TOTAL MSG\n",
			argv[0]);
		return 2;
	}
	fd = tt_connect_raw(atoi(argv[2]), atoi(argv[3]), 0);
	if (fd < 0)
		die("connect", -fd);
	if (argv[1][0] == 'p')
		ping(fd, strtoull(argv[4], NULL, 0), strtoul(argv[5], NULL, 0));
	else
		bulk(fd, strtoull(argv[4], NULL, 0), strtoul(argv[5], NULL, 0), argv[1][1] == 'l' && argv[1][2] == 'a');
	close(fd);
	return 0;
}
