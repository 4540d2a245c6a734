/* worker: one event loop thread of the gateway and the request handler that runs on it. */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include <h2o.h>

#include "../bff/jwt_cache.h"
#include "../bff/snapshot.h"
#include "gw_config.h"
#include "host.h"
#include "live.h"

struct gw_server;

/*
 * A worker owns one h2o context and event loop, its listening sockets (one per configured
 * listener, SO_REUSEPORT) and a cached reference to the live snapshot. Every field is touched
 * only by the worker's own thread, except `control` and `host.calls` (other threads post messages to
 * them, `host` under its post_lock).
 */
typedef struct gw_worker {
    h2o_context_t ctx; /* first: the handler finds its worker from req->conn->ctx */
    unsigned index;
    struct gw_server *server;
    pthread_t thread;
    int fds[GW_MAX_LISTENERS];
    h2o_socket_t *listeners[GW_MAX_LISTENERS];
    h2o_accept_ctx_t accept[GW_MAX_LISTENERS];
    size_t nlisteners;
    h2o_multithread_receiver_t control;
    int stopping;
    gw_live_cache live;
    uint64_t rng[2]; /* request ids */
    gw_host host;
    h2o_linklist_t http1_pending; /* routed HTTP/1 requests not yet answered (the disconnect sweep) */
    gw_timer sweep;
    size_t inflight;                           /* routed requests not yet answered */
    bff_jwt_cache *jwt_cache;                  /* verified tokens (created on first use) */
    unsigned nthreads;                         /* worker threads of the server (upstream connection shares) */
    struct gw_upstream_pool **upstream_pools;  /* see upstream.c */
    h2o_linklist_t flights;                    /* collapsed upstream GETs in flight (call.c) */
    size_t max_header_count, max_header_bytes; /* server.max_header_count / max_header_bytes */
    int accept_paused;                         /* at server.max_connections: listeners not read */
    gw_timer accept_check;                     /* while paused: resumes once connections closed */
    uint64_t accept_paused_logged_ns;
    size_t nupstream_pools;
} gw_worker;

/* The h2o handler for every request (registered at "/"). Runs on the worker's loop thread. */
/* 64 random bits from the worker's generator (xorshift128+; unique ids, not secrets). Worker thread. */
uint64_t gw_random(gw_worker *w);
int gw_handle_request(h2o_handler_t *self, h2o_req_t *req);

#endif
