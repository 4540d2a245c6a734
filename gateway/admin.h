/* admin: the admin listener (its own thread and loop): health, status and reload. */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stddef.h>

#include "gw_config.h"

/*
 * Serves, on server.admin (loopback by default; separate from the traffic listeners and thread, so
 * it answers while the gateway is flooded):
 *   GET  /healthz        200 {"status":"ok"}
 *   GET  /admin/status   200 {"version": N, "uptimeSeconds": S, "reloads": ..., "reloadFailures": ...,
 *                        "lastReload": {...}, "functions": [{"name","kind","version","path","loadedAt"}]}
 *   POST /admin/reload   200 {"reason","ok":true,...} or 422 with "errors" when the reload failed
 *   POST /admin/rollback 200 {"ok":true,"version":N}: the version the last reload replaced serves again;
 *                        409 when there is none
 * Anything else: 404 JSON. Start after the live snapshot is published; stop before exit.
 */
int gw_admin_start(const gw_listen *listen, char *err, size_t cap);
void gw_admin_stop(void);

#endif
