/* live: publication of the live snapshot to the worker threads. */
#ifndef GW_LIVE_H
#define GW_LIVE_H

#include <stdint.h>

#include "../bff/snapshot.h"

/*
 * One snapshot is live at a time. gw_live_publish (any thread, typically main or a reloader)
 * replaces it in one atomic step; workers keep a cached reference per thread and notice a new
 * publication with a single atomic load per request, taking the lock only when it changed.
 * A request acquires its own reference from the cache and releases it when it ends, so requests
 * that started on the old snapshot finish on it; the old snapshot is freed when its last
 * reference goes.
 */

/* Takes over the caller's reference to snap. The previous live snapshot's reference is dropped. */
void gw_live_publish(bff_snapshot *snap);
/* Returns a new reference to the live snapshot, or NULL when none was published. Any thread. */
bff_snapshot *gw_live_acquire(void);
/* Drops the live snapshot (at exit). */
void gw_live_clear(void);

typedef struct gw_live_cache {
    bff_snapshot *snap; /* one reference, or NULL */
    uint64_t generation;
} gw_live_cache;

/* Returns a new reference to the live snapshot via the thread's cache; never NULL after the first publish. */
bff_snapshot *gw_live_cache_acquire(gw_live_cache *cache);
void gw_live_cache_release(gw_live_cache *cache);

#endif
