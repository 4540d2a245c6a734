/* upstream: non-blocking HTTP/1.1 calls to upstream services from a worker's event loop. */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "../bff/plan.h"

struct gw_worker;

/*
 * A call runs on its worker's loop with our own HTTP/1.1 client over h2o sockets. Connections are
 * kept alive and reused through one pool per worker and upstream; they stay registered with the loop
 * (idle ones are closed when the upstream closes them or after the upstream's keepalive_ms). Each worker opens at most
 * its share of the upstream's max_connections (ceil(max / threads)); calls beyond it wait, in order, for a connection.
 * A call has a total deadline (connecting, waiting and reading included), not only an idle timeout; at the deadline it
 * is cancelled and its connection closed. Responses larger than the upstream's max_body_bytes fail.
 * A GET or HEAD that fails before any response byte (e.g. a kept-alive connection the upstream had
 * just closed) is tried once more on a new connection while time remains.
 *
 * The callback runs exactly once, on the worker's thread, unless the call was cancelled first.
 * Everything here is single-threaded per worker.
 */

typedef struct gw_upstream_call gw_upstream_call;

typedef struct gw_upstream_result {
    int status;        /* the HTTP status, or 0 when there is no response */
    const char *error; /* NULL with a response; else why there is none (timeout, reset, too large...) */
    int timed_out;     /* the deadline passed */
    int too_large;     /* the response passed max_body_bytes */
    h2o_iovec_t body;  /* the whole response body; valid during the callback only */
    h2o_iovec_t content_type;
} gw_upstream_result;

typedef void (*gw_upstream_cb)(void *data, const gw_upstream_result *res);

typedef struct gw_upstream_request {
    const bff_upstream *upstream;
    const char *method;
    h2o_iovec_t target;         /* path and query, already encoded; the upstream's base path is prepended */
    const h2o_iovec_t *headers; /* name, value, name, value... (names lower-case, values without CR/LF) */
    size_t nheaders;            /* pairs */
    h2o_iovec_t body;           /* with a body: content-type application/json */
    uint64_t timeout_ms;
} gw_upstream_request;

/* Starts a call (copies everything it needs from req). Returns NULL on out of memory. */
gw_upstream_call *gw_upstream_start(struct gw_worker *w, const gw_upstream_request *req, gw_upstream_cb cb, void *data);
/* Stops a call whose callback has not run: its connection is closed, the callback never runs. */
void gw_upstream_cancel(gw_upstream_call *call);

/* Worker teardown: closes pooled connections (no call may be in flight). Worker thread. */
void gw_upstreams_dispose(struct gw_worker *w);

#endif
