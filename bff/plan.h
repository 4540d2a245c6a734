/* plan: a composed route's steps of calls (functions and upstream HTTP services), its response and its shape. */
#ifndef BFF_PLAN_H
#define BFF_PLAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../functions/fn.h"
#include "cache.h"
#include "cfg.h"
#include "shape.h"
#include "template.h"

/*
 * An upstream is an HTTP service named in the entry file's "upstreams":
 *   "users": {"url": "http://users.internal:8080/api", "timeout_ms": 1000, "max_connections": 64,
 *             "keepalive_ms": 30000, "max_body_bytes": 1048576, "headers": {"x-api-key": "..."},
 *             "cache": {"ttl_ms": 5000, "max_entries": 10000, "max_bytes": 16777216, "per_user": true},
 *             "collapse": true}
 * Calls to it go to url's host and port (http:// or https://); their paths are appended to url's path.
 *
 * A composed route has "steps" instead of "function": each step is one call (an object) or a
 * parallel group (a list of calls). Steps run in order; the calls of a group run concurrently.
 * Every call has a unique "name", under which its result joins the composition context:
 *   {"request": {"method", "path", "params", "query", "headers", "body", "claims"}, "<name>": result...}
 * Templates (see template.h) read that context with ${/json/pointer}; a call may only refer to
 * "request" and to calls of earlier steps (checked at load).
 *
 * Everything here is immutable once loaded and owned by the snapshot.
 */

typedef struct bff_upstream {
    char *name;
    char *host; /* as written in the URL (a name or an address; IPv6 without brackets), for connecting and Host */
    uint16_t port;
    int https;       /* TLS: the certificate verified against the system's CAs (or ca_file) and the host name */
    char *ca_file;   /* "ca_file": PEM CA certificates to trust instead of the system's (resolved path), or NULL */
    char *base_path; /* the URL's path without a trailing '/', or "" */
    uint64_t timeout_ms;
    uint64_t max_connections; /* per process: each worker thread gets its share */
    uint64_t keepalive_ms;    /* how long an idle connection is kept for reuse */
    size_t max_body_bytes;    /* larger responses fail the call */
    char **header_names;      /* lower-case; sent on every call */
    char **header_values;
    size_t nheaders;
    bff_cache *cache;  /* "cache": successful GET responses, shared by every route calling it; NULL: none */
    int collapse;      /* "collapse": identical GETs in flight on a worker share one request */
    uint32_t stats_id; /* the gateway's metrics id for its calls; 0 when not tracked */
} bff_upstream;

#define BFF_UPSTREAM_DEFAULT_TIMEOUT_MS 1000
#define BFF_UPSTREAM_DEFAULT_MAX_CONNECTIONS 64
#define BFF_UPSTREAM_DEFAULT_KEEPALIVE_MS 30000
#define BFF_UPSTREAM_DEFAULT_MAX_BODY (1u << 20)

typedef enum bff_call_kind { BFF_CALL_FUNCTION, BFF_CALL_UPSTREAM } bff_call_kind;

typedef struct bff_call_header {
    char *name; /* lower-case */
    bff_template *value;
} bff_call_header;

typedef struct bff_call_query {
    char *name;
    bff_template *value;
} bff_call_query;

typedef struct bff_call {
    char *name;
    bff_call_kind kind;
    fn_function *fn;              /* BFF_CALL_FUNCTION: one reference */
    uint32_t fn_stats_id;         /* its metrics id */
    const bff_upstream *upstream; /* BFF_CALL_UPSTREAM: owned by the snapshot */
    char *method;                 /* upstream: "GET" by default */
    bff_template *path;           /* upstream: a string template, appended to the upstream's base path */
    bff_call_query *query;        /* upstream: query parameters, in order */
    size_t nquery;
    bff_call_header *headers; /* upstream: extra request headers */
    size_t nheaders;
    bff_template *body;  /* upstream: the JSON body; function: its input (event.json). NULL: none */
    uint64_t timeout_ms; /* 0: the upstream's (for functions: the route's); always capped by the route's deadline */
    int optional;        /* a failure yields `fallback` instead of failing the route */
    json_t *fallback;    /* one reference; JSON null by default */
} bff_call;

typedef struct bff_step {
    bff_call *calls;
    size_t ncalls;
    int group; /* written as a list (its result, when last, is an object of the calls' results) */
} bff_step;

typedef struct bff_plan {
    bff_step *steps;
    size_t nsteps;
    size_t ncalls;          /* in all steps */
    bff_template *response; /* NULL: the last step's result */
    int call_status;        /* add "_calls": {name: {"status", "ms", "error"?}} to an object response */
    bff_shape *shape;       /* NULL: returned as built */
    char *summary;          /* "profile, [recs, cart]": for listings and logs */
} bff_plan;

/* Resolves names while a plan loads: the snapshot's functions and upstreams. */
typedef struct bff_plan_env {
    void *data;
    /* A loaded function by config name: NULL when unknown (*known = 0) or when it failed to load (*known = 1). */
    fn_function *(*function)(void *data, const char *name, int *known);
    uint32_t (*function_stats_id)(void *data, const char *name);
    const bff_upstream *(*upstream)(void *data, const char *name);
} bff_plan_env;

/*
 * Loads the route `def` (its "steps", "response", "call_status", "shape") at `path` of `file`.
 * Returns the plan, or NULL with every problem appended to errs.
 */
bff_plan *bff_plan_load(json_t *def, const char *file, const char *path, const bff_plan_env *env, cfg_errors *errs);
/* NULL-safe. */
void bff_plan_free(bff_plan *plan);

/* Loads the entry file's "upstreams" object into *out and *n (possibly empty; free with bff_upstreams_free even
 * after errors). Returns 0, or -1 with errors appended. */
int bff_upstreams_load(json_t *def, const char *file, bff_upstream **out, size_t *n, cfg_errors *errs);
void bff_upstreams_free(bff_upstream *ups, size_t n);

#endif
