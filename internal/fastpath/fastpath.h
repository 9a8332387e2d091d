// The C side of package fastpath: see fastpath.go.
#ifndef SECCOMP_SHIM_FASTPATH_H
#define SECCOMP_SHIM_FASTPATH_H

#include <stdint.h>

// Entry kinds: what the C thread may answer by itself.
enum { FP_ASK = 0, FP_CONTINUE = 1, FP_ERRNO = 2 };

// FP_SYSCALLS bounds the syscall numbers the table covers; a notification
// with a higher number (or x32's high bit, or another arch) is asked.
#define FP_SYSCALLS 512
// FP_BUCKETS: the latency histogram's upper bounds (fp_bounds_ns) plus +Inf.
#define FP_BUCKETS 11

struct fp_entry {
	uint8_t kind;
	uint8_t audit; // FP_ERRNO: count the denial when its slot is counting, else ask
	uint16_t err;  // FP_ERRNO: positive errno, 1..4094
};

struct fp_table {
	struct fp_entry e[FP_SYSCALLS];
};

// fp_slot counts one syscall's denials while Go's audit log only counts
// them (a flood past its per-window quota). seq is odd while the C thread
// writes; Go reads after stopping the count (fp_stop_counting).
struct fp_slot {
	uint32_t seq;
	uint32_t counting;
	uint32_t tid;
	uint32_t pad;
	uint64_t count;
	int64_t last_ns; // CLOCK_REALTIME of the last one counted
	uint64_t args[6];
};

struct fp_loop {
	int fd, stopfd, blocking;
	uint32_t arch;
	uintptr_t handle;
	struct fp_table *table; // current answers; swapped by Go
	struct fp_table *using; // the table the C thread is reading (a hazard pointer)
	uint32_t stopping;
	int send_err;           // first SEND failure other than ENOENT
	int64_t inflight;
	uint64_t buckets[FP_BUCKETS];
	uint64_t sum_ns, count;
	uint64_t continues[FP_SYSCALLS], errnos[FP_SYSCALLS];
	struct fp_slot slots[FP_SYSCALLS];
};

extern const uint64_t fp_bounds_ns[FP_BUCKETS - 1];

int fp_start(struct fp_loop *l);
void fp_stop_counting(struct fp_slot *s);

#endif
