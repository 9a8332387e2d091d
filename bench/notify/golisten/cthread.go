package main

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct cargs { int fd; int err; };

static void *cloop(void *p) {
	struct cargs a = *(struct cargs *)p;
	free(p);
	struct seccomp_notif n;
	struct seccomp_notif_resp r;
	for (;;) {
		memset(&n, 0, sizeof n);
		if (ioctl(a.fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
			struct pollfd pf = {.fd = a.fd, .events = POLLIN};
			// ENOENT with POLLHUP: no task left (6.11+); without: a withdrawn call.
			if (errno == EINTR || (errno == ENOENT && !(poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP)))) continue;
			break;
		}
		memset(&r, 0, sizeof r);
		r.id = n.id;
		if (a.err) r.error = -a.err; else r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(a.fd, SECCOMP_IOCTL_NOTIF_SEND, &r);
	}
	close(a.fd);
	return NULL;
}

static int cthread_start(int fd, int err) {
	struct cargs *a = malloc(sizeof *a);
	if (!a) return ENOMEM;
	a->fd = fd; a->err = err;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &at, cloop, a);
	pthread_attr_destroy(&at);
	if (e) free(a);
	return e;
}
*/
import "C"

import "syscall"

// cthread serves fd from a detached C thread with a fixed answer (errno, or
// continue if 0), and closes it when no task uses the filter any more: the
// Go runtime is in the process but not on the round trip.
func cthread(fd int, errno int) error {
	if e := C.cthread_start(C.int(fd), C.int(errno)); e != 0 {
		return syscall.Errno(e)
	}
	return nil
}
