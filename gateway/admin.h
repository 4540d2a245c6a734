/* admin: the admin listener (its own thread and loop): health, status and reload. */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stddef.h>

#include "gw_config.h"

/*
 * Serves, on server.admin (loopback by default; separate from the traffic listeners and thread, so
 * it answers while the gateway is flooded):
 *   GET  /               the status page (self-contained HTML: routes, rates, p50/p99, a p99 chart)
 *   GET  /admin/stats    per-route counts and duration buckets as JSON (what the status page polls)
 *   GET  /healthz        200 {"status":"ok"} (the process is alive)
 *   GET  /readyz         200 once a snapshot is live and listeners are up; 503 while draining
 *   GET  /metrics        Prometheus text format (see metrics.h)
 *   GET  /admin/routes   the live route table of each frontend, with each route's limits
 *   GET  /admin/status   200 {"version": N, "uptimeSeconds": S, "reloads": ..., "reloadFailures": ...,
 *                        "lastReload": {...}, "functions": [{"name","kind","version","path","loadedAt"}]}
 *   POST /admin/reload   200 {"reason","ok":true,...} or 422 with "errors" when the reload failed
 *   POST /admin/rollback 200 {"ok":true,"version":N}: the version the last reload replaced serves again;
 *                        409 when there is none
 * Anything else: 404 JSON. Start after the live snapshot is published; stop before exit.
 */
int gw_admin_start(const gw_listen *listen, char *err, size_t cap);
/* The port the admin listener is bound to (0 when none). */
unsigned gw_admin_port(void);
/* /readyz answers 503 from now on (called when the drain starts). Any thread. */
void gw_admin_set_draining(void);
void gw_admin_stop(void);

#endif
