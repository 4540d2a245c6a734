/* compose: runs a composed route's plan: steps of function and upstream calls, then its response. */
#ifndef GW_COMPOSE_H
#define GW_COMPOSE_H

#include <h2o.h>

#include "../bff/snapshot.h"
#include "../functions/fn.h"

struct gw_worker;

/*
 * gw_compose_start has fn_start's contract, so a composed route runs where a function would: it
 * returns 0 with `res` filled when everything finished at once, a negative errno, or FN_PENDING with
 * *task set and done(data, 0) called later; fn_task_cancel stops every call in flight (returning 1
 * while abandoned C calls still run on pool threads: in->call->released then fires once they have all
 * ended). When it completes while C calls it abandoned at their timeouts still run, it sets
 * res->pending_release and in->call->released follows in the same way.
 *
 * The composition always completes with rc 0 and a response: 200 with the route's JSON result (shaped;
 * "x-bffgate-partial: a, b" naming optional calls that failed and were replaced by their fallback;
 * "_calls" when the route asks for it), or 502 (a required call failed) / 504 (it timed out) with
 * {"error", "call", "requestId"}. Each call's timeout is its own (or its upstream's), capped by what
 * remains of the route's deadline (in->call->start_ns + timeout_ms). Failures are logged with the
 * request id, the call and the reason.
 *
 * Worker thread only. The route, its plan and everything in `in` must stay valid until done runs or
 * the task is cancelled (the request holds the snapshot).
 */
typedef struct gw_compose_input {
    json_t *request;     /* the context's "request" object (borrowed; incref'd as needed) */
    const fn_call *call; /* the route's: event (function calls get a copy with their input as body), thread,
                            limits, start, host, released, claims */
    h2o_iovec_t request_id;
    struct gw_scope *scope; /* the request's trace context */
} gw_compose_input;

int gw_compose_start(struct gw_worker *w, const bff_route *route, const gw_compose_input *in, fn_response *res,
                     fn_done_cb done, void *data, fn_task **task);

#endif
