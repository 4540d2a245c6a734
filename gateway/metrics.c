/* metrics: a registry of route ids, per-thread counter shards, and the Prometheus text rendering. */
#include "metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../functions/c_runtime.h"
#include "../functions/lua_runtime.h"
#include "live.h"
#include "overload.h"
#include "reload.h"
#include "server.h"

/* Latency buckets (seconds): 0.5 ms .. 10 s. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

typedef struct route_shard {
    atomic_uint_fast64_t by_class[5]; /* 1xx .. 5xx */
    atomic_uint_fast64_t events[GW_EV_COUNT];
    atomic_uint_fast64_t buckets[NBUCKETS + 1]; /* the last is +Inf */
    atomic_uint_fast64_t sum_ns;
} route_shard;

#define CHUNK 256

typedef struct thread_shards {
    route_shard *chunks[GW_METRICS_MAX_ROUTES / CHUNK]; /* allocated on first use by the owner thread */
} thread_shards;

static struct {
    pthread_mutex_t lock;
    unsigned threads;
    thread_shards *shards; /* threads entries */
    char **names;          /* id -> "frontend\npattern"; id 0 unused */
    atomic_uint nids;
    double started; /* CLOCK_MONOTONIC seconds at gw_metrics_init, when the counters start */
} M = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void gw_metrics_init(unsigned threads)
{
    pthread_mutex_lock(&M.lock);
    if (M.shards == NULL) {
        M.threads = threads;
        M.shards = calloc(threads, sizeof(*M.shards));
        M.started = monotonic_seconds();
    }
    pthread_mutex_unlock(&M.lock);
}

uint32_t gw_metrics_route_id(const char *frontend, const char *pattern)
{
    pthread_mutex_lock(&M.lock);
    if (M.names == NULL) {
        M.names = calloc(GW_METRICS_MAX_ROUTES, sizeof(*M.names));
        atomic_store(&M.nids, 1);
    }
    uint32_t id = 0;
    unsigned n = atomic_load(&M.nids);
    size_t flen = strlen(frontend);
    for (unsigned i = 1; i < n && id == 0; ++i) {
        if (strncmp(M.names[i], frontend, flen) == 0 && M.names[i][flen] == '\n' &&
            strcmp(M.names[i] + flen + 1, pattern) == 0)
            id = i;
    }
    if (id == 0 && M.names != NULL && n < GW_METRICS_MAX_ROUTES &&
        asprintf(&M.names[n], "%s\n%s", frontend, pattern) > 0) {
        id = n;
        atomic_store(&M.nids, n + 1); /* published after the name is written */
    }
    pthread_mutex_unlock(&M.lock);
    return id;
}

static route_shard *shard_of(unsigned thread, uint32_t id)
{
    if (id == 0 || M.shards == NULL || thread >= M.threads)
        return NULL;
    route_shard **chunk = &M.shards[thread].chunks[id / CHUNK];
    route_shard *c = __atomic_load_n(chunk, __ATOMIC_ACQUIRE);
    if (c == NULL) {
        c = calloc(CHUNK, sizeof(route_shard));
        if (c == NULL)
            return NULL;
        __atomic_store_n(chunk, c, __ATOMIC_RELEASE);
    }
    return &c[id % CHUNK];
}

/* Only the owning thread writes a shard: a relaxed load and store, no locked instruction. */
static inline void bump(atomic_uint_fast64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

void gw_metrics_request(unsigned thread, uint32_t id, int status, uint64_t duration_ns)
{
    route_shard *s = shard_of(thread, id);
    if (s == NULL)
        return;
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < 5)
        bump(&s->by_class[cls], 1);
    double secs = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && secs > bucket_le[b])
        ++b;
    bump(&s->buckets[b], 1);
    bump(&s->sum_ns, duration_ns);
}

void gw_metrics_event(unsigned thread, uint32_t id, gw_route_event ev)
{
    route_shard *s = shard_of(thread, id);
    if (s != NULL)
        bump(&s->events[ev], 1);
}

/* Sums every thread's shard of route id. */
static void sum_route(uint32_t id, route_shard *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned t = 0; t < M.threads; ++t) {
        route_shard *c = __atomic_load_n(&M.shards[t].chunks[id / CHUNK], __ATOMIC_ACQUIRE);
        if (c == NULL)
            continue;
        const route_shard *s = &c[id % CHUNK];
        for (size_t i = 0; i < 5; ++i)
            out->by_class[i] += atomic_load_explicit(&s->by_class[i], memory_order_relaxed);
        for (size_t i = 0; i < GW_EV_COUNT; ++i)
            out->events[i] += atomic_load_explicit(&s->events[i], memory_order_relaxed);
        for (size_t i = 0; i <= NBUCKETS; ++i)
            out->buckets[i] += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        out->sum_ns += atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
    }
}

/* Appends a label value with Prometheus escaping (backslash, quote, newline). */
static void label(fn_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        if (s[i] == '\\' || s[i] == '"')
            fn_buf_append_char(out, '\\');
        if (s[i] == '\n') {
            fn_buf_append_str(out, "\\n");
            continue;
        }
        fn_buf_append_char(out, s[i]);
    }
}

/* Function series are registered with an empty frontend: "\nNAME"; upstream series with "\x01\nNAME". */
static int is_function_series(const char *name)
{
    return name[0] == '\n';
}

static int is_upstream_series(const char *name)
{
    return name[0] == '\x01';
}

/* A route's own series: neither a function's nor an upstream's. */
static int is_route_series(const char *name)
{
    return !is_function_series(name) && !is_upstream_series(name);
}

static void route_labels(fn_buf *out, const char *name)
{
    if (is_upstream_series(name)) {
        fn_buf_append_str(out, "upstream=\"");
        label(out, name + 2, strlen(name + 2));
        fn_buf_append_char(out, '"');
        return;
    }
    if (is_function_series(name)) {
        fn_buf_append_str(out, "function=\"");
        label(out, name + 1, strlen(name + 1));
        fn_buf_append_char(out, '"');
        return;
    }
    const char *nl = strchr(name, '\n');
    fn_buf_append_str(out, "frontend=\"");
    label(out, name, (size_t)(nl - name));
    fn_buf_append_str(out, "\",route=\"");
    label(out, nl + 1, strlen(nl + 1));
    fn_buf_append_char(out, '"');
}

static void header(fn_buf *out, const char *name, const char *type, const char *help)
{
    char line[512];
    snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    fn_buf_append_str(out, line);
}

static void sample(fn_buf *out, const char *metric, const char *name, const char *extra, double value)
{
    char num[64];
    fn_buf_append_str(out, metric);
    fn_buf_append_char(out, '{');
    route_labels(out, name);
    if (extra != NULL)
        fn_buf_append_str(out, extra);
    snprintf(num, sizeof(num), "} %.17g\n", value);
    fn_buf_append_str(out, num);
}

static const struct {
    gw_route_event ev;
    const char *metric, *extra, *help;
} event_metrics[] = {
    {GW_EV_INVOCATION, "bffgate_invocations_total", NULL, "Function invocations started."},
    {GW_EV_FUNCTION_ERROR, "bffgate_function_errors_total", NULL, "Invocations that failed (500)."},
    {GW_EV_THROTTLED_CONCURRENCY, "bffgate_throttled_total", ",limit=\"concurrency\"",
     "Requests refused with 429, by the limit that refused them."},
    {GW_EV_THROTTLED_RATE, "bffgate_throttled_total", ",limit=\"rate_limit\"", NULL},
    {GW_EV_TIMEOUT, "bffgate_timeouts_total", NULL, "Requests answered 504 at the route's deadline."},
    {GW_EV_MEMORY_LIMIT, "bffgate_memory_limit_total", NULL, "Invocations stopped at the memory limit."},
    {GW_EV_CLIENT_GONE, "bffgate_client_gone_total", NULL, "Requests whose client went away first."},
    {GW_EV_UNAUTHORIZED, "bffgate_jwt_rejections_total", ",reason=\"invalid_token\"",
     "Requests refused for their token: 401 (missing or invalid) or 403 (a claim rule)."},
    {GW_EV_FORBIDDEN, "bffgate_jwt_rejections_total", ",reason=\"insufficient_scope\"", NULL},
};

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = -1; /* the directory's own descriptor */
    while (d != NULL && readdir(d) != NULL)
        ++n;
    if (d != NULL)
        closedir(d);
    return n - 2; /* . and .. */
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static void histogram(fn_buf *out, const char *base, const char *name, const route_shard *sum)
{
    char metric[128], le[48];
    uint64_t cumulative = 0;
    snprintf(metric, sizeof(metric), "%s_bucket", base);
    for (size_t b = 0; b <= NBUCKETS; ++b) {
        cumulative += sum->buckets[b];
        if (b < NBUCKETS)
            snprintf(le, sizeof(le), ",le=\"%g\"", bucket_le[b]);
        else
            snprintf(le, sizeof(le), ",le=\"+Inf\"");
        sample(out, metric, name, le, (double)cumulative);
    }
    snprintf(metric, sizeof(metric), "%s_sum", base);
    sample(out, metric, name, NULL, (double)sum->sum_ns / 1e9);
    snprintf(metric, sizeof(metric), "%s_count", base);
    sample(out, metric, name, NULL, (double)cumulative);
}

void gw_metrics_render(fn_buf *out)
{
    unsigned n = atomic_load(&M.nids);
    route_shard *sums = calloc(n > 0 ? n : 1, sizeof(*sums));
    if (sums == NULL)
        return;
    for (unsigned id = 1; id < n; ++id)
        sum_route(id, &sums[id]);

    header(out, "bffgate_requests_total", "counter", "Requests answered, by status class.");
    static const char *const classes[] = {",code=\"1xx\"", ",code=\"2xx\"", ",code=\"3xx\"", ",code=\"4xx\"",
                                          ",code=\"5xx\""};
    for (unsigned id = 1; id < n; ++id) {
        if (!is_route_series(M.names[id]))
            continue;
        for (size_t c = 0; c < 5; ++c) {
            if (c == 1 || sums[id].by_class[c] > 0) /* always show 2xx so a route appears from the start */
                sample(out, "bffgate_requests_total", M.names[id], classes[c], (double)sums[id].by_class[c]);
        }
    }
    const char *last = NULL;
    for (size_t m = 0; m < sizeof(event_metrics) / sizeof(event_metrics[0]); ++m) {
        if (last == NULL || strcmp(last, event_metrics[m].metric) != 0)
            header(out, event_metrics[m].metric, "counter", event_metrics[m].help);
        last = event_metrics[m].metric;
        for (unsigned id = 1; id < n; ++id) {
            if (is_route_series(M.names[id]))
                sample(out, event_metrics[m].metric, M.names[id], event_metrics[m].extra,
                       (double)sums[id].events[event_metrics[m].ev]);
        }
    }
    header(out, "bffgate_route_duration_seconds", "histogram", "Time from routing to the answer.");
    for (unsigned id = 1; id < n; ++id) {
        if (is_route_series(M.names[id]))
            histogram(out, "bffgate_route_duration_seconds", M.names[id], &sums[id]);
    }
    header(out, "bffgate_function_invocations_total", "counter", "Invocations per function, by outcome.");
    for (unsigned id = 1; id < n; ++id) {
        if (is_function_series(M.names[id])) {
            sample(out, "bffgate_function_invocations_total", M.names[id], ",outcome=\"ok\"",
                   (double)sums[id].by_class[1]);
            sample(out, "bffgate_function_invocations_total", M.names[id], ",outcome=\"error\"",
                   (double)sums[id].by_class[4]);
        }
    }
    header(out, "bffgate_function_duration_seconds", "histogram", "Time spent in the function, per invocation.");
    for (unsigned id = 1; id < n; ++id) {
        if (is_function_series(M.names[id]))
            histogram(out, "bffgate_function_duration_seconds", M.names[id], &sums[id]);
    }
    header(out, "bffgate_upstream_calls_total", "counter",
           "Calls to each upstream by outcome (ok: a response below 400; cached: from the upstream's cache).");
    for (unsigned id = 1; id < n; ++id) {
        if (!is_upstream_series(M.names[id]))
            continue;
        const route_shard *u = &sums[id];
        uint64_t timeouts = u->events[GW_EV_TIMEOUT];
        uint64_t failed = u->by_class[3] + u->by_class[4];
        sample(out, "bffgate_upstream_calls_total", M.names[id], ",outcome=\"ok\"",
               (double)(u->by_class[0] + u->by_class[1] + u->by_class[2]));
        sample(out, "bffgate_upstream_calls_total", M.names[id], ",outcome=\"error\"",
               (double)(failed > timeouts ? failed - timeouts : 0));
        sample(out, "bffgate_upstream_calls_total", M.names[id], ",outcome=\"timeout\"", (double)timeouts);
        sample(out, "bffgate_upstream_calls_total", M.names[id], ",outcome=\"cached\"",
               (double)u->events[GW_EV_CACHE_HIT]);
    }
    header(out, "bffgate_upstream_duration_seconds", "histogram", "Time from starting an upstream call to its end.");
    for (unsigned id = 1; id < n; ++id) {
        if (is_upstream_series(M.names[id]))
            histogram(out, "bffgate_upstream_duration_seconds", M.names[id], &sums[id]);
    }
    free(sums);

    /* Gauges and per-function figures come from the live snapshot. */
    bff_snapshot *snap = gw_live_acquire();
    /* Routes sharing a pattern (GET /x and POST /x) share one series: sum them per id. Labels come from
     * the registry's names, never from a formatted copy. */
    uint64_t *inflight = calloc(n > 0 ? n : 1, sizeof(uint64_t)), *queued = calloc(n > 0 ? n : 1, sizeof(uint64_t));
    unsigned char *present = calloc(n > 0 ? n : 1, 1);
    for (size_t f = 0; snap != NULL && inflight != NULL && queued != NULL && present != NULL && f < snap->nfrontends;
         ++f) {
        const bff_frontend *fe = &snap->frontends[f];
        for (size_t r = 0; r < fe->nroutes; ++r) {
            uint32_t id = fe->routes[r].stats_id;
            if (id == 0 || id >= n)
                continue;
            inflight[id] += atomic_load(&fe->routes[r].admission.inflight);
            queued[id] += atomic_load(&fe->routes[r].admission.nqueued);
            present[id] = 1;
        }
    }
    header(out, "bffgate_inflight", "gauge", "Invocations running now, per route.");
    for (unsigned id = 1; present != NULL && id < n; ++id) {
        if (present[id])
            sample(out, "bffgate_inflight", M.names[id], NULL, (double)inflight[id]);
    }
    header(out, "bffgate_queued", "gauge", "Requests waiting for a slot now, per route.");
    for (unsigned id = 1; present != NULL && id < n; ++id) {
        if (present[id])
            sample(out, "bffgate_queued", M.names[id], NULL, (double)queued[id]);
    }
    free(inflight);
    free(queued);
    free(present);
    header(out, "bffgate_function_cold_starts_total", "counter",
           "Lua states created by invocations (the pool was empty), per function.");
    for (size_t i = 0; snap != NULL && i < snap->nfunctions; ++i) {
        const fn_function *fn = snap->functions[i].fn;
        if (fn == NULL || fn->kind != FN_KIND_LUA)
            continue;
        size_t cold = 0;
        for (unsigned t = 0; t < fn->nthreads; ++t) {
            fn_lua_pool_stats st;
            fn_lua_pool_stats_get(fn, t, &st);
            cold += st.cold_starts;
        }
        char line[512];
        fn_buf_append_str(out, "bffgate_function_cold_starts_total{function=\"");
        label(out, fn->name, strlen(fn->name));
        snprintf(line, sizeof(line), "\",version=\"%s\"} %zu\n", fn->version, cold);
        fn_buf_append_str(out, line);
    }
    size_t lua_bytes = 0;
    for (size_t i = 0; snap != NULL && i < snap->nfunctions; ++i) {
        const fn_function *fn = snap->functions[i].fn;
        for (unsigned t = 0; fn != NULL && fn->kind == FN_KIND_LUA && t < fn->nthreads; ++t) {
            fn_lua_pool_stats st;
            fn_lua_pool_stats_get(fn, t, &st);
            lua_bytes += st.idle_bytes;
        }
    }
    char line[2048];
    snprintf(line, sizeof(line),
             "# HELP bffgate_lua_memory_bytes Memory held by warm (idle) Lua states.\n"
             "# TYPE bffgate_lua_memory_bytes gauge\nbffgate_lua_memory_bytes %zu\n",
             lua_bytes);
    fn_buf_append_str(out, line);
    snprintf(line, sizeof(line),
             "# HELP bffgate_config_version The config version serving.\n# TYPE bffgate_config_version gauge\n"
             "bffgate_config_version %llu\n",
             snap != NULL ? (unsigned long long)snap->version : 0ULL);
    fn_buf_append_str(out, line);
    bff_snapshot_release(&snap);

    uint64_t reloads = 0, failures = 0;
    gw_reload_counts(&reloads, &failures);
    snprintf(line, sizeof(line),
             "# HELP bffgate_reloads_total Successful config reloads.\n# TYPE bffgate_reloads_total counter\n"
             "bffgate_reloads_total %llu\n"
             "# HELP bffgate_reload_failures_total Reloads refused (the running version kept serving).\n"
             "# TYPE bffgate_reload_failures_total counter\nbffgate_reload_failures_total %llu\n",
             (unsigned long long)reloads, (unsigned long long)failures);
    fn_buf_append_str(out, line);
    uint64_t iso_crashed = 0, iso_killed = 0;
    fn_c_isolated_stats(&iso_crashed, &iso_killed);
    snprintf(line, sizeof(line),
             "# HELP bffgate_overload_refused_total Requests refused with 503 past a server.overload mark.\n"
             "# TYPE bffgate_overload_refused_total counter\n"
             "bffgate_overload_refused_total{mark=\"max_inflight\"} %llu\n"
             "bffgate_overload_refused_total{mark=\"max_memory_mb\"} %llu\n"
             "# HELP bffgate_overload_memory_over Whether resident memory is over server.overload.max_memory_mb.\n"
             "# TYPE bffgate_overload_memory_over gauge\nbffgate_overload_memory_over %d\n"
             "# HELP bffgate_connections_open Client connections open (counted when server.max_connections is set).\n"
             "# TYPE bffgate_connections_open gauge\nbffgate_connections_open %zu\n"
             "# HELP bffgate_accept_paused_total Times a worker stopped accepting at server.max_connections.\n"
             "# TYPE bffgate_accept_paused_total counter\nbffgate_accept_paused_total %llu\n"
             "# HELP bffgate_http2_reset_cuts_total HTTP/2 connections shut down for cancelling too many requests.\n"
             "# TYPE bffgate_http2_reset_cuts_total counter\nbffgate_http2_reset_cuts_total %llu\n"
             "# HELP bffgate_c_isolated_crashes_total Isolated C function calls whose worker process died.\n"
             "# TYPE bffgate_c_isolated_crashes_total counter\nbffgate_c_isolated_crashes_total %llu\n"
             "# HELP bffgate_c_isolated_kills_total Isolated C function workers killed at a call's deadline.\n"
             "# TYPE bffgate_c_isolated_kills_total counter\nbffgate_c_isolated_kills_total %llu\n",
             (unsigned long long)gw_overload_refused(0), (unsigned long long)gw_overload_refused(1),
             gw_overload_memory_over(), gw_server_open_connections(), (unsigned long long)gw_server_accept_pauses(),
             (unsigned long long)gw_server_reset_cuts(), (unsigned long long)iso_crashed,
             (unsigned long long)iso_killed);
    fn_buf_append_str(out, line);
    snprintf(line, sizeof(line),
             "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
             "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
             "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n"
             "process_open_fds %ld\n",
             rss_bytes(), count_fds());
    fn_buf_append_str(out, line);
}

static void stats_route_json(fn_buf *out, const bff_route *route)
{
    route_shard sum;
    if (route->stats_id != 0 && route->stats_id < atomic_load(&M.nids) && M.shards != NULL)
        sum_route(route->stats_id, &sum);
    else
        memset(&sum, 0, sizeof(sum));
    char num[160];
    fn_buf_append_str(out, "{\"path\":");
    fn_buf_append_json_string(out, route->pattern, strlen(route->pattern));
    snprintf(num, sizeof(num),
             ",\"requests\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu},"
             "\"durationBuckets\":[",
             (unsigned long long)sum.by_class[0], (unsigned long long)sum.by_class[1],
             (unsigned long long)sum.by_class[2], (unsigned long long)sum.by_class[3],
             (unsigned long long)sum.by_class[4]);
    fn_buf_append_str(out, num);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= NBUCKETS; ++b) {
        cumulative += sum.buckets[b];
        if (b < NBUCKETS)
            snprintf(num, sizeof(num), "%s{\"le\":%g,\"count\":%llu}", b > 0 ? "," : "", bucket_le[b],
                     (unsigned long long)cumulative);
        else
            snprintf(num, sizeof(num), ",{\"le\":\"+Inf\",\"count\":%llu}", (unsigned long long)cumulative);
        fn_buf_append_str(out, num);
    }
    snprintf(num, sizeof(num), "],\"durationSum\":%.9f}", (double)sum.sum_ns / 1e9);
    fn_buf_append_str(out, num);
}

void gw_metrics_stats_json(fn_buf *out)
{
    bff_snapshot *snap = gw_live_acquire();
    char head[160];
    snprintf(head, sizeof(head), "{\"version\":%llu,\"monotonicSeconds\":%.3f,\"startedSeconds\":%.3f,\"frontends\":[",
             snap != NULL ? (unsigned long long)snap->version : 0ULL, monotonic_seconds(), M.started);
    fn_buf_append_str(out, head);
    for (size_t f = 0; snap != NULL && f < snap->nfrontends; ++f) {
        const bff_frontend *fe = &snap->frontends[f];
        fn_buf_append_str(out, f > 0 ? ",{\"name\":" : "{\"name\":");
        fn_buf_append_json_string(out, fe->name, strlen(fe->name));
        fn_buf_append_str(out, ",\"routes\":[");
        unsigned char seen[GW_METRICS_MAX_ROUTES / 8] = {0}; /* ids listed for this frontend */
        int first = 1;
        for (size_t r = 0; r < fe->nroutes; ++r) {
            const bff_route *route = &fe->routes[r];
            uint32_t id = route->stats_id;
            if (id != 0 && id < GW_METRICS_MAX_ROUTES) {
                if (seen[id / 8] & (1u << (id % 8)))
                    continue; /* the same pattern with other methods: one set of counters */
                seen[id / 8] |= (unsigned char)(1u << (id % 8));
            }
            if (!first)
                fn_buf_append_char(out, ',');
            first = 0;
            stats_route_json(out, route);
        }
        fn_buf_append_str(out, "]}");
    }
    fn_buf_append_str(out, "]}");
    bff_snapshot_release(&snap);
}
