/* host: per-worker timers of any duration, calls posted across threads, and the fn_host the runtimes use. */
#ifndef GW_HOST_H
#define GW_HOST_H

#include <pthread.h>
#include <stdint.h>

#include <h2o.h>

#include "../functions/fn.h"

struct gw_worker;

#define GW_MAX_TIMEOUTS 64

/* h2o 2.2 timers come in lists of one fixed duration: a worker keeps one list per duration in use. */
typedef struct gw_host {
    fn_host super; /* what the runtimes get (fn_call.host) */
    struct gw_worker *worker;
    struct {
        uint64_t ms;
        h2o_timeout_t timeout;
    } timeouts[GW_MAX_TIMEOUTS];
    size_t ntimeouts;
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

/*
 * Links `entry` (its cb set by the caller) to fire after `ms` on the worker's loop. Durations are
 * exact while fewer than GW_MAX_TIMEOUTS distinct values are in use; beyond that the next longer
 * list in use is taken (never shorter). Worker thread only. h2o_timeout_unlink cancels.
 */
void gw_timer_link(struct gw_worker *w, uint64_t ms, h2o_timeout_entry_t *entry);

/* Runs cb(data) on the worker's thread soon. Any thread. Returns 0, -ENOMEM, or -EPIPE when the worker
 * has closed (shutdown): the caller then keeps ownership of data. The worker array outlives every
 * thread that may post (it is never freed), so posting to a closed worker is always safe. */
int gw_post(struct gw_worker *w, void (*cb)(void *), void *data);

#endif
