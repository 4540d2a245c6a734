/* metrics: per-route counters and latency histograms in per-thread shards, rendered for Prometheus on scrape. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../functions/fn_buf.h"

/*
 * Every route (frontend + pattern) gets a stable id from a process-wide registry, so its counters
 * survive reloads (Prometheus counters only go up). Each worker thread writes its own shard with
 * plain relaxed stores (no lock, no atomic read-modify-write on the request path); a scrape sums
 * the shards. Ids are assigned while a snapshot is built (off the loops, under a mutex).
 */

#define GW_METRICS_MAX_ROUTES 16384
#define GW_METRICS_MAX_THREADS 256

typedef enum gw_route_event {
    GW_EV_THROTTLED_CONCURRENCY,
    GW_EV_THROTTLED_RATE,
    GW_EV_TIMEOUT,
    GW_EV_MEMORY_LIMIT,
    GW_EV_FUNCTION_ERROR,
    GW_EV_CLIENT_GONE,
    GW_EV_INVOCATION,
    GW_EV_UNAUTHORIZED,
    GW_EV_FORBIDDEN,
    GW_EV_CACHE_HIT, /* upstream series: a call answered from the upstream's cache */
    GW_EV_COUNT
} gw_route_event;

/* Returns the id of (frontend, pattern), creating it; 0 means "not tracked" (registry full). Any thread.
 * A function's own series (invocations by outcome, duration) use frontend "" and its name as pattern; an
 * upstream's (calls by outcome, duration) use GW_METRICS_UPSTREAM and its name. */
#define GW_METRICS_UPSTREAM "\x01"
uint32_t gw_metrics_route_id(const char *frontend, const char *pattern);

/* Sets the number of worker threads (before they start). */
void gw_metrics_init(unsigned threads);

/* On worker `thread`: a request of route `id` answered `status` after `duration_ns`. */
void gw_metrics_request(unsigned thread, uint32_t id, int status, uint64_t duration_ns);
/* On worker `thread`: one limit decision or outcome for route `id`. */
void gw_metrics_event(unsigned thread, uint32_t id, gw_route_event ev);

/* Appends the whole Prometheus text exposition (routes, functions, reloads, process). Any thread. */
void gw_metrics_render(fn_buf *out);

/*
 * Appends, as one JSON object, the request counters of every route of the live snapshot, summed from
 * the same shards as gw_metrics_render (for the admin status page):
 *   {"version": N, "monotonicSeconds": T, "startedSeconds": T0, "frontends": [{"name", "routes": [{"path",
 *    "requests": {"1xx": n, "2xx": n, "3xx": n, "4xx": n, "5xx": n},
 *    "durationBuckets": [{"le": 0.0005, "count": n}, ..., {"le": "+Inf", "count": n}], "durationSum": s}]}]}
 * Counts are totals since the process started (they survive reloads); bucket counts are cumulative, as
 * in Prometheus. T is CLOCK_MONOTONIC in seconds, so a reader divides count deltas by T deltas for
 * rates; T0 is the same clock when the counters started (gw_metrics_init). A pattern is listed once per frontend even
 * when several routes (methods) share it, as in /metrics. Any thread; takes no lock that the request path takes.
 */
void gw_metrics_stats_json(fn_buf *out);

#endif
