/* harness: end-to-end test helpers: config trees in temp dirs, the real bffgate process, libcurl requests. */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* A config tree in a fresh temporary directory, and the bffgate process serving it. */
typedef struct e2e_server {
    char dir[256];
    char log_path[300];
    int port;
    int admin_port; /* 0 until e2e_pick_admin_port */
    pid_t pid;
} e2e_server;

/* Creates the temp dir; nothing is started. */
void e2e_init(e2e_server *srv);
/* Writes dir/relpath (creating subdirectories); "@PORT@" and "@ADMIN@" become 0 (the server picks free
 * ports; e2e_start reads them back into srv->port and srv->admin_port), "@EXAMPLES@" the directory of
 * the example C objects. */
void e2e_write(e2e_server *srv, const char *relpath, const char *text);
/* Picks a free loopback port (before writing configs that use @PORT@), below the ephemeral range. */
void e2e_pick_port(e2e_server *srv);
/* The same for the admin listener (@ADMIN@). */
void e2e_pick_admin_port(e2e_server *srv);
/* Starts bffgate on dir/gateway.json with extra argv (NULL-terminated, may be NULL), learns the bound
 * ports from its --ready-file, and waits until the port accepts connections. Returns 0, or -1 if the
 * process exited or did not listen within 10 s. */
int e2e_start(e2e_server *srv, const char *const *extra_args);
/* Sends `sig` and waits for exit; returns the exit status (or 128 + signal). */
int e2e_stop(e2e_server *srv, int sig);
/* Stops if running and removes the temp dir. */
void e2e_cleanup(e2e_server *srv);
/* The whole log (stderr) of the process so far, malloc'd. */
char *e2e_log(const e2e_server *srv);

/* The process's resident set size in kB (VmRSS), or -1. */
long e2e_rss_kb(pid_t pid);

/* Runs bffgate with args (NULL-terminated), capturing stdout+stderr; returns the exit status. */
int e2e_run(const char *const *args, char **output);

typedef enum e2e_http { E2E_HTTP1, E2E_HTTP2_PRIOR, E2E_HTTP2_UPGRADE, E2E_HTTPS } e2e_http;

typedef struct e2e_response {
    long status;
    long http_version; /* 11 or 2 */
    char *headers;     /* raw header block, lower-cased names as sent */
    char *body;
    size_t body_len;
} e2e_response;

/* One request. `headers` is NULL-terminated "Name: value" strings (may be NULL); body may be NULL.
 * Returns 0, or -1 on a transport error (connection refused...). */
int e2e_request(e2e_server *srv, e2e_http http, const char *method, const char *path, const char *const *headers,
                const char *body, size_t body_len, e2e_response *res);
void e2e_response_release(e2e_response *res);
/* One HTTP/1.1 request to the admin listener. */
int e2e_admin_request(e2e_server *srv, const char *method, const char *path, e2e_response *res);
/* The value of one Prometheus sample on the admin listener's /metrics, named with its labels
 * ("bffgate_overload_refused_total{mark=\"max_inflight\"}"), or -1 when it is not there. */
double e2e_metric(e2e_server *srv, const char *sample);
/* Finds a response header value (case-insensitive name); returns a malloc'd copy or NULL. */
char *e2e_header(const e2e_response *res, const char *name);

#endif
