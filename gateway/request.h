/* request: one routed request's life: admission, deadline, invocation, response, and the client going away. */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <h2o.h>

#include "../bff/snapshot.h"

struct gw_worker;

/*
 * A routed request lives in a gw_request (malloc'd, owned by the worker thread that accepted it).
 * It holds a snapshot reference, its route's admission slot while it has one, a deadline timer
 * for the route's timeout_ms (counted from arrival, queueing included) and the function task.
 *
 * Outcomes, each exactly once: the function's response; 429 + Retry-After when the route is full
 * and its queue too, or the wait passed queue_wait_ms; 504 at the deadline (the task is cancelled:
 * a Lua state discarded, a C function's late result dropped); 500 for a failed function. If the
 * client goes away first (HTTP/2 reset or connection closed: h2o disposes the request; HTTP/1
 * connection closed: noticed by a peek sweep every 20 ms), the task is cancelled and the slot or
 * queue place freed at once.
 *
 * Everything runs on the owning worker's thread; only admission hand-overs cross threads, as
 * messages to the owner.
 */

/* Routes the matched request. `snap` is a reference the request takes over. */
void gw_request_run(struct gw_worker *w, h2o_req_t *req, h2o_iovec_t id, bff_snapshot *snap, const bff_frontend *fe,
                    const bff_route_match *m);

/* admission.h's admit callback for every route (any thread): posts the waiter to its worker. */
void gw_request_admit(bff_waiter *waiter);

/* Switches the access log (one line per request, one per invocation) on or off. Any thread. */
void gw_access_log_set(int on);

/* Worker setup and teardown of what requests need (timers, message receivers, the disconnect sweep). */
void gw_requests_init(struct gw_worker *w);
void gw_requests_dispose(struct gw_worker *w);

#endif
