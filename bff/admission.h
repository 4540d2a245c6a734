/* admission: a route's concurrency limit with a bounded FIFO wait queue, shared by all worker threads. */
#ifndef BFF_ADMISSION_H
#define BFF_ADMISSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * At most `limit` holders at once, across all threads. A request that finds the route full waits
 * in a FIFO queue of at most `queue_max` entries (0 = no queue: reject at once); when a holder
 * leaves, the slot passes to the oldest waiter, which is handed to the `admit` callback given at
 * init, called outside the lock on whichever thread freed or found the slot: usually the leaving
 * thread, but bff_admission_enter may also call it (for older waiters, or for its own waiter when a
 * slot freed while it was being queued) before it returns BFF_ADMIT_QUEUED. The callback must
 * therefore not depend on state the entering caller sets up after enter returns; the gateway's
 * callback only posts a message to the waiter's own thread. The fast paths (admitted with nobody
 * queued; leaving with nobody queued) take no lock: one compare-and-swap or one atomic decrement.
 * Counters are atomic and read by any thread. A newcomer may take a slot freed just as a waiter was
 * being queued (that waiter then gets the next one): FIFO holds among queued requests.
 */

typedef struct bff_waiter bff_waiter;
struct bff_waiter {
    bff_waiter *prev, *next; /* private: linked while queued */
    int queued;              /* private */
    void *data;              /* the caller's */
};

typedef struct bff_admission_counters {
    atomic_uint_fast64_t admitted;  /* requests that got a slot (directly or from the queue) */
    atomic_uint_fast64_t queued;    /* requests that had to wait */
    atomic_uint_fast64_t throttled; /* requests refused: queue full, or waited too long */
} bff_admission_counters;

typedef struct bff_admission {
    uint64_t limit;
    uint64_t queue_max;
    void (*admit)(bff_waiter *waiter); /* the slot is now the waiter's */
    atomic_uint_fast64_t inflight;
    atomic_uint_fast64_t nqueued;
    pthread_mutex_t lock;
    bff_waiter *head, *tail;
    bff_admission_counters counters;
} bff_admission;

void bff_admission_init(bff_admission *a, uint64_t limit, uint64_t queue_max, void (*admit)(bff_waiter *));
void bff_admission_dispose(bff_admission *a);

enum { BFF_ADMIT_REJECTED = -1, BFF_ADMIT_QUEUED = 0, BFF_ADMIT_OK = 1 };

/* Takes a slot (BFF_ADMIT_OK), or queues `waiter` (BFF_ADMIT_QUEUED: admit(waiter) is called, possibly
 * already inside this call, unless bff_admission_cancel wins), or refuses (BFF_ADMIT_REJECTED: the queue
 * is full). limit must be at least 1. */
int bff_admission_enter(bff_admission *a, bff_waiter *waiter);
/* Gives a slot back; may hand it to the oldest waiter (admit is called before this returns). */
void bff_admission_leave(bff_admission *a);
/* Removes a queued waiter. Returns 1 if it was still queued (it will never be admitted), 0 if it
 * was already admitted (admit has been or is being called: the slot is the waiter's to leave). */
int bff_admission_cancel(bff_admission *a, bff_waiter *waiter);
/* Counts a waiter refused after waiting too long (after a successful cancel). */
void bff_admission_count_throttled(bff_admission *a);

#endif
