/* call: one call to a function or an upstream on behalf of a request, with its result decoded as JSON. */
#ifndef GW_CALL_H
#define GW_CALL_H

#include <h2o.h>
#include <jansson.h>

#include "../bff/plan.h"
#include "../bff/snapshot.h"
#include "../functions/fn.h"
#include "../functions/fn_buf.h"

struct gw_worker;

/*
 * The common engine under composed routes (compose.c) and the calls Lua functions make
 * (ctx.call, ctx.fetch, ctx.all: subcall.c). A call is resolved already (a loaded function, or an
 * upstream with method, target, headers and body built); this runs it on the worker's loop and
 * decodes what comes back:
 *  - functions: rc 0 and a status below 400 is a result (its body decoded as JSON when it says
 *    JSON or says nothing and parses, else a string); otherwise a failure ("timeout", "memory
 *    limit", "function error", "status 500", "invalid JSON");
 *  - upstreams: a response is a result unless its status is 400 or more (`status_is_result` makes
 *    every status a result, for ctx.fetch); otherwise "timeout", "unreachable", "response too
 *    large", "status 503", "invalid JSON".
 * Upstream calls carry x-request-id and a W3C traceparent (a new parent id per call).
 *
 * Identical GETs to an upstream with "collapse" share one request (a "flight", per worker and config
 * version); GETs to an upstream with a "cache" are answered from it when they can and fill it.
 *
 * The callback runs exactly once, unless the call is cancelled first; it may run inside
 * gw_call_start (a synchronous function, a cache hit, a failure before any I/O), never inside h2o's
 * client callbacks (upstream results come from the loop). Worker thread only.
 */

typedef struct gw_call gw_call;

typedef struct gw_call_result {
    int ok;
    int status;    /* the HTTP or function status; 0 without one */
    json_t *value; /* ok: the decoded result (a reference the callback takes over) */
    int timed_out;
    int abandoned;      /* a C function timed out and still runs on a pool thread: released(data) follows */
    const char *reason; /* failure: short, fit for a client */
    const char *detail; /* failure: for the log */
} gw_call_result;

typedef void (*gw_call_cb)(void *data, gw_call_result *res);

typedef struct gw_call_spec {
    bff_call_kind kind;
    /* functions */
    fn_function *fn;
    const char *input_text; /* its JSON body (event.body, decoded as event.json); NULL: the route's own */
    /* upstreams */
    const bff_upstream *upstream;
    const char *method;
    h2o_iovec_t target;         /* path and query, encoded */
    const h2o_iovec_t *headers; /* name, value pairs */
    size_t nheaders;
    h2o_iovec_t body; /* JSON text, or empty */
    int status_is_result;
    uint64_t timeout_ms; /* > 0 */
} gw_call_spec;

/* What calls made from a request's functions resolve against (fn_call.scope): the request's snapshot and
 * trace context. Owned by the request. */
typedef struct gw_scope {
    const struct bff_snapshot *snap;
    struct gw_request *owner; /* for gw_request_hold */
    h2o_iovec_t traceparent;  /* the client's header (request memory), read on first use */
    int trace_ready;
    char trace_id[33];
    char trace_flags[3];
} gw_scope;

/* A C function called from one of the request's functions timed out but still runs on a pool thread: the
 * request keeps its route's slot (even once answered) until gw_request_unhold, so a route never holds more
 * pool threads than its concurrency. Worker thread; defined in request.c. */
void gw_request_hold(gw_scope *scope);
void gw_request_unhold(gw_scope *scope);

/* Fills the scope's trace id and flags on first use (most requests never call anything). */
void gw_scope_trace(struct gw_worker *w, gw_scope *scope);

/* The host op behind ctx.call, ctx.fetch and ctx.all (fn_host_ops.subcalls_start / subcalls_cancel). */
void *gw_subcalls_start(struct gw_worker *w, const fn_call *call, const fn_subcall *calls, fn_subcall_result *results,
                        size_t n, fn_host_cb done, void *data);
void gw_subcalls_cancel(void *batch);

/* What every call of one request shares. */
typedef struct gw_call_origin {
    const fn_call *call; /* the route's invocation: event, claims, thread, host, limits, scope */
    h2o_iovec_t request_id;
    const char *trace_id;    /* 32 hex digits */
    const char *trace_flags; /* 2 hex digits */
} gw_call_origin;

/*
 * Starts a call; everything in spec is copied or must outlive the call (the function, the upstream).
 * `released(data)` runs when a C function abandoned by gw_call_cancel has really ended. Returns the call
 * in flight, or NULL when the callback has already run.
 */
gw_call *gw_call_start(struct gw_worker *w, const gw_call_spec *spec, const gw_call_origin *origin, gw_call_cb cb,
                       fn_host_cb released, void *data);
/* Stops a call whose callback has not run. Returns 1 when a C function goes on running on a pool thread
 * (`released` runs when it has ended), else 0. */
int gw_call_cancel(gw_call *call);

/* Appends "\nsub=" and the verified JWT subject (as JSON text, so numbers count too) to a cache key. */
void gw_call_append_subject(fn_buf *key, const json_t *claims);

/* A trace id and flags from a client's traceparent (version 00, well-formed), else a new random trace. */
void gw_call_trace_context(struct gw_worker *w, h2o_iovec_t traceparent, char trace_id[33], char flags[3]);

#endif
