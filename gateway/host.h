/* host: per-worker timers of any duration, calls posted across threads, and the fn_host the runtimes use. */
#ifndef GW_HOST_H
#define GW_HOST_H

#include <pthread.h>
#include <stdint.h>

#include <h2o.h>

#include "../functions/fn.h"

struct gw_worker;

#define GW_TIMER_LISTS 16

/*
 * h2o 2.2 timers come in lists of one fixed duration. A worker keeps a fixed ladder of lists (1 ms to
 * 60 s); a timer is linked into the longest list not longer than the time left, and linked again when
 * that fires early, so it fires within about a millisecond of its due time, never before, whatever
 * durations functions ask for. A timer of 0 ms goes on a list of its own and runs in the same or the
 * next turn of the loop, without waiting (this defers work out of the current callback without adding
 * latency). A 0 ms timer started from a 0 ms timer's callback goes on a second list that runs after the
 * first; one started from that list waits for the next turn: a chain of them (a handler calling
 * ctx.sleep(0) in a loop) runs two hops per turn and never keeps the loop from its sockets.
 */
typedef struct gw_timer gw_timer;
struct gw_timer {
    h2o_timeout_entry_t entry; /* private */
    uint64_t due_ns;           /* private */
    struct gw_worker *w;       /* private */
    void (*cb)(gw_timer *timer);
};

typedef struct gw_host {
    fn_host super; /* what the runtimes get (fn_call.host) */
    struct gw_worker *worker;
    h2o_timeout_t lists[GW_TIMER_LISTS]; /* lists[0]: 0 ms timers */
    h2o_timeout_t zero_next;             /* 0 ms timers started from a lists[0] callback (runs after it) */
    int zero_running;                    /* in a callback of: 0 neither, 1 lists[0], 2 zero_next */
    h2o_multithread_receiver_t calls;
    pthread_mutex_t post_lock; /* orders posts against gw_host_close */
    int closed;
} gw_host;

/* On the worker's thread, after its h2o context exists / before it is disposed. */
void gw_host_init(struct gw_worker *w);
/* After this, gw_post to the worker fails with -EPIPE (the worker's loop is ending); posts already made
 * are still delivered by the loop's next runs. Any thread. */
void gw_host_close(struct gw_worker *w);
/* Returns -1 if a timer is still linked or a post is still undelivered (then the h2o context must not be
 * disposed). On the worker's thread, after gw_host_close. */
int gw_host_dispose(struct gw_worker *w);

/* Starts (or restarts) `timer` to call cb after `ms`. Worker thread only. */
void gw_timer_start(struct gw_worker *w, gw_timer *timer, uint64_t ms, void (*cb)(gw_timer *));
/* Stops it if it is running (NULL-safe); its cb will not run. */
void gw_timer_stop(gw_timer *timer);
int gw_timer_active(const gw_timer *timer);

/* Runs cb(data) on the worker's thread soon. Any thread. Returns 0, -ENOMEM, or -EPIPE when the worker
 * has closed (shutdown): the caller then keeps ownership of data. The worker array outlives every
 * thread that may post (it is never freed), so posting to a closed worker is always safe. */
int gw_post(struct gw_worker *w, void (*cb)(void *), void *data);

#endif
