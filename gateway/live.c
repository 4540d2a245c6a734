/* live: the live snapshot pointer, a generation counter and per-thread caches. */
#include "live.h"

#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static bff_snapshot *live_snap;
static atomic_uint_fast64_t live_generation;

void gw_live_publish(bff_snapshot *snap)
{
    pthread_mutex_lock(&live_lock);
    bff_snapshot *old = live_snap;
    live_snap = snap;
    atomic_fetch_add_explicit(&live_generation, 1, memory_order_release);
    pthread_mutex_unlock(&live_lock);
    bff_snapshot_release(&old);
}

bff_snapshot *gw_live_acquire(void)
{
    pthread_mutex_lock(&live_lock);
    bff_snapshot *snap = live_snap != NULL ? bff_snapshot_acquire(live_snap) : NULL;
    pthread_mutex_unlock(&live_lock);
    return snap;
}

void gw_live_clear(void)
{
    gw_live_publish(NULL);
}

bff_snapshot *gw_live_cache_acquire(gw_live_cache *cache)
{
    uint64_t gen = atomic_load_explicit(&live_generation, memory_order_acquire);
    if (gen != cache->generation || cache->snap == NULL) {
        bff_snapshot_release(&cache->snap);
        pthread_mutex_lock(&live_lock);
        cache->snap = live_snap != NULL ? bff_snapshot_acquire(live_snap) : NULL;
        cache->generation = atomic_load_explicit(&live_generation, memory_order_relaxed);
        pthread_mutex_unlock(&live_lock);
    }
    return cache->snap != NULL ? bff_snapshot_acquire(cache->snap) : NULL;
}

void gw_live_cache_release(gw_live_cache *cache)
{
    bff_snapshot_release(&cache->snap);
    cache->generation = 0;
}
