/* overload: refusing new requests past the in-flight and memory marks (see overload.h). */
#include "overload.h"

#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "../functions/fn_log.h"
#include "worker.h"

/* The marks change on a reload while workers read them: relaxed atomics (each is read on its own). */
static struct {
    unsigned threads;
    atomic_size_t inflight_share;      /* per worker; 0: off */
    atomic_uint_fast64_t memory_bytes; /* 0: off */
    atomic_uint retry_after_s;
    atomic_int memory_over;
    atomic_uint_fast64_t refused[2]; /* [0] in flight, [1] memory */
} O = {.threads = 1, .retry_after_s = 1};

void gw_overload_configure(const gw_overload_config *cfg, unsigned threads)
{
    O.threads = threads > 0 ? threads : 1;
    gw_overload_reconfigure(cfg);
}

void gw_overload_reconfigure(const gw_overload_config *cfg)
{
    unsigned t = O.threads;
    atomic_store_explicit(&O.inflight_share, cfg->max_inflight > 0 ? (size_t)((cfg->max_inflight + t - 1) / t) : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&O.memory_bytes, cfg->max_memory_mb << 20, memory_order_relaxed);
    atomic_store_explicit(&O.retry_after_s, cfg->retry_after_s > 0 ? cfg->retry_after_s : 1, memory_order_relaxed);
    if (cfg->max_memory_mb == 0)
        atomic_store_explicit(&O.memory_over, 0, memory_order_relaxed);
}

static uint64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int n = f != NULL ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f != NULL)
        fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

void gw_overload_sample(void)
{
    uint64_t mark = atomic_load_explicit(&O.memory_bytes, memory_order_relaxed);
    if (mark == 0)
        return;
    uint64_t rss = resident_bytes();
    int over = atomic_load_explicit(&O.memory_over, memory_order_relaxed);
    if (!over && rss >= mark) {
        atomic_store_explicit(&O.memory_over, 1, memory_order_relaxed);
        fn_log_msg(FN_LOG_WARN, "overload: resident memory %llu MiB is over max_memory_mb (%llu): new requests get 503",
                   (unsigned long long)(rss >> 20), (unsigned long long)(mark >> 20));
    } else if (over && rss < mark / 20 * 19) {
        atomic_store_explicit(&O.memory_over, 0, memory_order_relaxed);
        fn_log_msg(FN_LOG_WARN, "overload: resident memory %llu MiB is back under 95%% of max_memory_mb (%llu)",
                   (unsigned long long)(rss >> 20), (unsigned long long)(mark >> 20));
    }
}

const char *gw_overload_check(const gw_worker *w)
{
    size_t share = atomic_load_explicit(&O.inflight_share, memory_order_relaxed);
    if (share > 0 && w->inflight >= share) {
        atomic_fetch_add_explicit(&O.refused[0], 1, memory_order_relaxed);
        return "max_inflight";
    }
    if (atomic_load_explicit(&O.memory_over, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&O.refused[1], 1, memory_order_relaxed);
        return "max_memory_mb";
    }
    return NULL;
}

unsigned gw_overload_retry_after_s(void)
{
    return atomic_load_explicit(&O.retry_after_s, memory_order_relaxed);
}

int gw_overload_memory_over(void)
{
    return atomic_load_explicit(&O.memory_over, memory_order_relaxed);
}

uint64_t gw_overload_refused(int memory)
{
    return atomic_load_explicit(&O.refused[memory ? 1 : 0], memory_order_relaxed);
}
