/* server: the listeners, the worker threads and their event loops, and graceful shutdown. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>

#include <h2o.h>

#include "gw_config.h"

/*
 * gw_server_start binds every listener (one SO_REUSEPORT socket per listener and worker, all on
 * the same port, so port 0 resolves once), configures h2o (HTTP/1.1, HTTP/2 by prior knowledge
 * and by Upgrade, TLS with ALPN h2 where a certificate is configured, the request body limit)
 * and starts cfg->threads workers, each running its own event loop. The live snapshot must be
 * published (gw_live_publish) before requests arrive.
 *
 * gw_server_stop asks every worker to drain: stop accepting, tell HTTP/2 clients GOAWAY, let
 * in-flight requests finish, close idle connections, and leave its loop once it has no
 * connections or drain_timeout_ms has passed. Thread-safe; returns at once.
 * gw_server_wait joins the workers. gw_server_free releases everything (NULL-safe, clears *srv).
 * All three are called from the thread that started the server.
 */

typedef struct gw_server gw_server;

/* A non-blocking listening socket on l->address:port (SO_REUSEPORT when reuseport, so each worker can
 * have its own). *bound_port, when not NULL, gets the port bound (for port 0). Returns the fd, or -1
 * with err set. */
int gw_listen_socket(const gw_listen *l, unsigned port, int reuseport, unsigned *bound_port, char *err, size_t cap);

/* Returns 0, or -1 with err set (bind failure, TLS setup failure...). */
int gw_server_start(const gw_server_config *cfg, gw_server **out, char *err, size_t cap);
/* The port a listener is bound to (resolved when the config asked for port 0). */
unsigned gw_server_port(const gw_server *srv, size_t listener);
/* Client connections open now, and how often a worker paused accepting at server.max_connections (counted only
 * when that limit is set). Any thread. */
size_t gw_server_open_connections(void);
uint64_t gw_server_accept_pauses(void);
/* A client cancelled `req` before its answer (HTTP/2: RST_STREAM). A connection that does it faster than
 * server.http2_reset_budget allows (a burst of budget, regained at budget / 10 per second) is shut down and
 * logged. HTTP/1 requests are ignored. Worker thread. */
void gw_server_note_cancel(h2o_req_t *req);
/* HTTP/2 connections shut down for that so far. Any thread. */
uint64_t gw_server_reset_cuts(void);
void gw_server_stop(gw_server *srv);
/* After gw_live_publish: each worker drops its cached reference to the previous snapshot (posted to
 * its loop), so an old snapshot is freed when its last request ends, even on an idle worker. */
void gw_server_snapshot_changed(gw_server *srv);
void gw_server_wait(gw_server *srv);
void gw_server_free(gw_server **srv);

#endif
