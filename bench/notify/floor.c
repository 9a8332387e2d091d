// floor: the smallest seccomp notify listener that can serve runc's
// hand-off. It is the floor that BenchmarkNotifyRoundTrip holds the agent
// against: one thread, a blocking RECV, a fixed answer, nothing else.
//
//   floor SOCKET ANSWER      ANSWER is "continue" or an errno number
//
// It serves one container at a time, which is all the benchmark needs:
// runc's connect succeeds on the listen backlog while the previous
// container is still being served, so nothing waits on us.
//
// Build: cc -O2 -o floor floor.c
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// Debian 12's headers are 6.1; the kernel may be newer (6.6+ has these).
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static void die(const char *what) {
	perror(what);
	exit(1);
}

// receive_fd takes the first fd of the first message carrying SCM_RIGHTS.
// runc sends the JSON state and the fd in one sendmsg, but the spec allows
// several, so read until an fd shows up or the peer closes. The shim's
// liveness check connects and closes without sending: that gives -1.
static int receive_fd(int conn) {
	char data[65536];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} u;
	for (;;) {
		struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		int fd = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)CMSG_DATA(c);
			for (int i = 0; i < nfds; i++) {
				if (fd < 0)
					fd = fds[i];
				else
					close(fds[i]); // not ours to keep
			}
		}
		if (fd >= 0)
			return fd;
	}
}

// hung_up tells "no task uses the filter" from a withdrawn notification
// (the target was interrupted by a signal): both make RECV fail with ENOENT.
static int hung_up(int fd) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void serve(int fd, int cont, int err) {
	// Best effort: kernels before 6.6 refuse it and simply wake elsewhere.
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0 && errno != EINVAL)
		perror("floor: SECCOMP_IOCTL_NOTIF_SET_FLAGS");
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (;;) {
		// The kernel refuses a request buffer that is not zeroed.
		memset(&req, 0, sizeof req);
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOENT && !hung_up(fd))
				continue;
			return; // ENOENT with POLLHUP (6.11+) or a dead fd: the container is gone
		}
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		if (cont)
			resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		else
			resp.error = -err; // the kernel wants it negative
		while (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno == EINTR)
			;
	}
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: floor SOCKET continue|ERRNO\n");
		return 2;
	}
	int cont = strcmp(argv[2], "continue") == 0, err = 0;
	if (!cont) {
		err = atoi(argv[2]);
		if (err <= 0 || err > 4094) {
			fprintf(stderr, "floor: bad errno %s\n", argv[2]);
			return 2;
		}
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "floor: socket path too long\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		die("floor: socket");
	if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("floor: bind");
	if (listen(l, 64) < 0)
		die("floor: listen");
	for (;;) {
		int conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("floor: accept");
		}
		int fd = receive_fd(conn);
		close(conn);
		if (fd < 0)
			continue;
		serve(fd, cont, err);
		close(fd);
	}
}
