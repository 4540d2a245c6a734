/* snapshot: the immutable, reference-counted result of loading a config: frontends, route tables, functions. */
#ifndef BFF_SNAPSHOT_H
#define BFF_SNAPSHOT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../functions/fn.h"
#include "admission.h"
#include "ratelimit.h"
#include "cfg.h"
#include "auth.h"
#include "cors.h"
#include "plan.h"
#include "route_table.h"

/*
 * Lifetime: bff_snapshot_build returns a snapshot with one reference. Each request takes a
 * reference for its whole life (bff_snapshot_acquire) and drops it at its end; the last
 * release frees everything, releasing the functions (Lua states closed, C objects unloaded).
 * Reference counts are atomic; everything else is immutable once built, so any number of
 * worker threads read a snapshot at once without locks. Per-thread mutable state (warm Lua
 * pools) lives inside the functions and is indexed by worker thread.
 *
 * Building never touches live state: a failed build leaves nothing behind.
 */

/* Limits a route runs under; each comes from the route, else its frontend, else the gateway defaults. */
typedef struct bff_limits {
    uint64_t timeout_ms;    /* deadline of the whole route, queueing included */
    uint64_t concurrency;   /* in-flight invocations of the route across all threads */
    uint64_t queue_max;     /* requests that may wait for a slot (0: refuse at once) */
    uint64_t queue_wait_ms; /* how long one may wait before it is refused */
    uint64_t memory_mb;     /* what one Lua invocation may allocate */
    double rate_rps;        /* requests per second per client (0: no rate limit) */
    double rate_burst;      /* bucket size */
    char rate_claim[64];    /* "by_claim": buckets per value of this JWT claim (else per client address) */
} bff_limits;

#define BFF_NAME_MAX 128 /* frontend names: they become metric labels and log fields */
#define BFF_DEFAULT_TIMEOUT_MS 3000
#define BFF_DEFAULT_CONCURRENCY 100
#define BFF_DEFAULT_QUEUE_MAX 100
#define BFF_DEFAULT_QUEUE_WAIT_MS 1000
#define BFF_DEFAULT_MEMORY_MB 64

typedef struct bff_route {
    char *pattern;
    unsigned methods;
    fn_function *fn; /* one reference; NULL for a composed route */
    bff_plan *plan;  /* "steps": a composed route; NULL for a function route */
    char *target;    /* what it runs, for listings and logs: the function's name, or "steps: a, [b, c]" */
    bff_limits limits;
    bff_admission admission;  /* shared by all threads */
    bff_ratelimit *ratelimit; /* NULL without a rate limit */
    uint32_t stats_id;        /* the gateway's metrics id for (frontend, pattern); 0 when not tracked */
    uint32_t fn_stats_id;     /* the metrics id of its function (frontend "", pattern = function name) */
    const bff_auth *auth;     /* what a request needs (the frontend's or own_auth); NULL: public */
    bff_auth *own_auth;       /* "auth": {"jwt": {...}}: the route's own JWT settings, or NULL */
    bff_claim_rule *rules;    /* "auth": {"require": [...]}: claim rules on top of auth's own */
    size_t nrules;
    bff_cache *cache; /* "cache": whole 200 answers to GET requests; NULL: none */
} bff_route;

typedef struct bff_frontend {
    char *name;
    char *file;        /* the file that defined it, for messages */
    char *path_prefix; /* "" when the frontend does not select by path */
    size_t path_prefix_len;
    char *host;        /* lower-case, without port; NULL when not selecting by host */
    char *header_name; /* lower-case; NULL when not selecting by header */
    char *header_value;
    bff_limits defaults;
    bff_route *routes;
    size_t nroutes;
    bff_route_table *table; /* values are bff_route pointers */
    bff_auth *auth;         /* "auth": {"jwt": ...}; NULL: no authentication unless a route has its own */
    bff_cors *cors;         /* NULL: no CORS headers, preflights are ordinary OPTIONS requests */
} bff_frontend;

typedef struct bff_snapshot_function {
    char *name;
    fn_function *fn; /* one reference */
    char *key;       /* kind, name, resolved path (and symbol) */
} bff_snapshot_function;

typedef struct bff_snapshot {
    atomic_uint refs;
    uint64_t version;      /* increases with each build in this process */
    char version_text[24]; /* the same in decimal (the x-bffgate-config header) */
    size_t version_len;
    bff_limits defaults;
    bff_frontend *frontends;
    size_t nfrontends;
    bff_snapshot_function *functions;
    size_t nfunctions;
    bff_upstream *upstreams; /* the entry file's "upstreams" */
    size_t nupstreams;
} bff_snapshot;

typedef struct bff_snapshot_options {
    unsigned nthreads; /* worker threads that will serve it (Lua pools are per thread) */
    unsigned prewarm;  /* warm Lua states to create per function and thread */
    /* Directories searched for C objects named without a '/', before the config's directory. */
    const char *const *lib_path;
    size_t nlib_path;
    /* Called when a queued request of any route gets its slot (see admission.h); NULL for --check. */
    void (*admit)(bff_waiter *waiter);
    /* The snapshot being replaced, or NULL: a function whose definition and content are unchanged is
     * shared with it (same fn_function, warm states kept) instead of loaded again. */
    const bff_snapshot *previous;
    /* A stable metrics id for (frontend, route pattern), or NULL (ids are then 0). Functions are asked for
     * with frontend "", upstreams with frontend `upstream_stats_prefix`. */
    uint32_t (*route_stats_id)(const char *frontend, const char *pattern);
    const char *upstream_stats_prefix;
} bff_snapshot_options;

/*
 * Builds a snapshot from the entry config `root` (already parsed from `file`): the keys
 * "defaults", "functions", "upstreams" and "frontends" (a list of file names or glob patterns relative to
 * `file`, each a frontend file). The key "server" belongs to the gateway and is skipped here.
 * Returns 0 with *out set, or -1 with every problem found appended to errs.
 */
int bff_snapshot_build(json_t *root, const char *file, const bff_snapshot_options *opts, bff_snapshot **out,
                       cfg_errors *errs);

bff_snapshot *bff_snapshot_acquire(bff_snapshot *snap);
/* NULL-safe; clears *snap. */
void bff_snapshot_release(bff_snapshot **snap);

/* Looks up a header of the request being routed; returns NULL when absent. */
typedef const char *(*bff_header_lookup)(void *ctx, const char *name, size_t name_len, size_t *value_len);

/*
 * Selects the frontend for a request: the first frontend, in config order, whose every criterion
 * holds (path prefix at a segment boundary, Host without port, header value). Returns NULL when
 * none does. The path left after the prefix goes to rest and rest_len the path left after the prefix ("/" when nothing
 * is left).
 */
const bff_frontend *bff_snapshot_select(const bff_snapshot *snap, const char *host, size_t host_len, const char *path,
                                        size_t path_len, bff_header_lookup lookup, void *lookup_ctx, const char **rest,
                                        size_t *rest_len);

#endif
