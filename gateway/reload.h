/* reload: live reload of the config: file watching, building the new snapshot off the loops, publishing it. */
#ifndef GW_RELOAD_H
#define GW_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "../functions/fn_buf.h"
#include "gw_config.h"

struct gw_server;

/*
 * A reloader thread watches (inotify) the config file's directory and its subdirectories, and the
 * directory of every function file, including the atomic `..data` symlink swap of a Kubernetes
 * ConfigMap. Changes are debounced (50 ms of quiet), then the whole config is loaded again into a
 * new snapshot on that thread, never on an event loop: parsed, every function compiled or loaded
 * (unchanged ones are shared with the running snapshot, warm), every reference resolved. Only a
 * complete success is published (gw_live_publish), and the workers are told to drop their cached
 * reference so the old snapshot is freed when its last request ends. A failed reload leaves the
 * running snapshot serving and is logged with every error and counted.
 *
 * Settings of the "server" object other than log_level and access_log cannot change live: a reload that changes
 * them logs that a restart is needed and applies everything else.
 *
 * All functions here are thread-safe; reloads are serialized.
 */

/* Starts the reloader for `config` (the path given on the command line). `running` is the server config
 * in use (copied). Returns 0, or -1 with err set (inotify unavailable: then only explicit reloads work,
 * which is not an error; -1 is for thread creation failure). */
int gw_reload_start(const char *config, const gw_server_config *running, const char *const *lib_path, size_t nlib_path,
                    struct gw_server *server, char *err, size_t cap);
void gw_reload_stop(void);
/* Asks the reloader thread for a reload (SIGHUP). Async-signal-safe (one eventfd write). */
void gw_reload_request(void);

/* Runs a reload now (SIGHUP, POST /admin/reload). Returns 0 when the new snapshot was published. When
 * `result` is not NULL, appends a JSON object describing the outcome to it. Not on an event loop. */
int gw_reload_now(const char *reason, fn_buf *result);

/* Publishes again the snapshot the last successful reload replaced (POST /admin/rollback); the one it
 * replaces becomes the "previous" one, so rolling back twice goes forward again. Returns 0, or -1 when
 * there is nothing to roll back to. Appends a JSON result to `result` when not NULL. */
int gw_reload_rollback(fn_buf *result);

/* Successful and failed reloads so far. */
void gw_reload_counts(uint64_t *reloads, uint64_t *failures);

/* Appends the reload status as JSON members (no braces): "version", "reloads", "reloadFailures",
 * "lastReload": {...}, "functions": [...]. */
void gw_reload_status_json(fn_buf *out);

#endif
