// The C thread of package fastpath: receive, answer from the table, ask Go
// for everything else. It must never block on anything but the notify fd.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "_cgo_export.h"
#include "fastpath.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)

const uint64_t fp_bounds_ns[FP_BUCKETS - 1] = {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 10000000};

static int64_t ns(clockid_t clock) {
	struct timespec t;
	clock_gettime(clock, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// hung_up: no task uses the filter any more (seccomp_notify_poll's POLLHUP).
static int hung_up(int fd) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	return r == 1 && (p.revents & POLLHUP);
}

// entry reads the answer for n. The hazard pointer tells Go which table is
// in use, so it frees a replaced table only once this read is over.
static struct fp_entry entry(struct fp_loop *l, const struct seccomp_notif *n) {
	struct fp_entry e = {.kind = FP_ASK};
	if (n->data.arch != l->arch || n->data.nr < 0 || n->data.nr >= FP_SYSCALLS)
		return e;
	struct fp_table *t;
	do {
		t = LOAD(&l->table);
		STORE(&l->using, t);
	} while (t != LOAD(&l->table));
	if (t)
		e = t->e[n->data.nr];
	STORE(&l->using, (struct fp_table *)0);
	return e;
}

// count records a denial in its slot if Go's audit log has handed the
// counting over, and reports whether it did. seq is made odd before the
// check, so fp_stop_counting either sees the writer or is seen by it.
static int count(struct fp_loop *l, const struct seccomp_notif *n) {
	struct fp_slot *s = &l->slots[n->data.nr];
	STORE(&s->seq, s->seq + 1);
	int counting = LOAD(&s->counting);
	if (counting) {
		s->count++;
		s->tid = n->pid;
		s->last_ns = ns(CLOCK_REALTIME);
		memcpy(s->args, n->data.args, sizeof s->args);
	}
	STORE(&s->seq, s->seq + 1);
	return counting;
}

// answer answers n from the table, or returns 0 for Go to answer it.
static int answer(struct fp_loop *l, const struct seccomp_notif *n, int64_t start) {
	struct fp_entry e = entry(l, n);
	if ((e.kind != FP_CONTINUE && e.kind != FP_ERRNO) || (e.kind == FP_ERRNO && e.audit && !count(l, n)))
		return 0;
	ADD(&l->inflight, 1);
	struct seccomp_notif_resp r = {.id = n->id};
	if (e.kind == FP_CONTINUE)
		r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	else
		r.error = -(int32_t)e.err;
	while (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != ENOENT) // ENOENT: the caller was interrupted or killed
			__atomic_compare_exchange_n(&l->send_err, &(int){0}, errno, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		break;
	}
	uint64_t took = ns(CLOCK_MONOTONIC) - start;
	int i = 0;
	while (i < FP_BUCKETS - 1 && took > fp_bounds_ns[i])
		i++;
	ADD(&l->buckets[i], 1);
	ADD(&l->sum_ns, took);
	ADD(&l->count, 1);
	ADD(e.kind == FP_CONTINUE ? &l->continues[n->data.nr] : &l->errnos[n->data.nr], 1);
	ADD(&l->inflight, -1);
	return 1;
}

// run is serveContainer's loop in C; fpAsk and fpDone are Go.
static void *run(void *arg) {
	struct fp_loop *l = arg;
	struct seccomp_notif n;
	struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN}, {.fd = l->stopfd, .events = POLLIN}};
	int err = 0;
	for (;;) {
		if (LOAD(&l->stopping))
			break;
		if (!l->blocking) {
			p[0].revents = p[1].revents = 0;
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				err = errno;
				break;
			}
			if (p[1].revents || ((p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p[0].revents & POLLIN)))
				break;
		}
		memset(&n, 0, sizeof n); // the kernel refuses a buffer that is not zeroed
		if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOENT) {
				if (hung_up(l->fd)) // 6.11+: the container ended
					break;
				continue; // the caller was interrupted by a signal
			}
			err = errno;
			break;
		}
		if (!answer(l, &n, ns(CLOCK_MONOTONIC)))
			fpAsk(l->handle, &n);
	}
	// Go frees l once fpDone returns: nothing may touch it after this.
	fpDone(l->handle, err);
	return 0;
}

int fp_start(struct fp_loop *l) {
	pthread_attr_t a;
	pthread_t t;
	int err = pthread_attr_init(&a);
	if (err)
		return err;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &a, run, l);
	pthread_attr_destroy(&a);
	return err;
}

void fp_stop_counting(struct fp_slot *s) {
	STORE(&s->counting, 0);
	while (LOAD(&s->seq) & 1)
		sched_yield();
}
