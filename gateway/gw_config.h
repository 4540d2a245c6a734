/* gw_config: the gateway's own part of the entry config (the "server" object) and the whole config load. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../bff/cfg.h"
#include "../bff/snapshot.h"

#define GW_MAX_LISTENERS 8
#define GW_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define GW_DEFAULT_DRAIN_TIMEOUT_MS 10000
#define GW_DEFAULT_PORT 8080
#define GW_DEFAULT_FUNCTION_THREADS 64
#define GW_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define GW_DEFAULT_HTTP2_MAX_STREAMS 100
#define GW_DEFAULT_HTTP2_RESET_BUDGET 200
#define GW_DEFAULT_MAX_HEADER_COUNT 100
#define GW_DEFAULT_MAX_HEADER_BYTES 16384

typedef struct gw_listen {
    char address[64];      /* numeric IPv4 or IPv6 address */
    uint16_t port;         /* 0 = any free port (the chosen one is logged) */
    char *tls_certificate; /* resolved paths, malloc'd; both NULL for cleartext */
    char *tls_key;
} gw_listen;

typedef struct gw_overload_config {
    uint64_t max_inflight;  /* routed requests in flight in the process; 0: no mark */
    uint64_t max_memory_mb; /* resident set size; 0: no mark */
    unsigned retry_after_s; /* what refused requests are told (default 1) */
} gw_overload_config;

typedef struct gw_server_config {
    gw_listen listen[GW_MAX_LISTENERS];
    size_t nlisten;
    gw_listen admin; /* the admin listener; admin.port == 0 and no address: none */
    int has_admin;
    unsigned threads;          /* 0 = number of CPUs */
    unsigned function_threads; /* most threads of the C function pool */
    uint64_t max_body_bytes;
    uint64_t drain_timeout_ms;
    uint64_t request_timeout_ms; /* HTTP/1: a whole request (head and body) and keep-alive idle; HTTP/2: idle */
    uint64_t http2_max_streams;  /* concurrent requests per HTTP/2 connection */
    uint64_t max_connections;    /* open client connections in the process; 0: no limit */
    uint64_t http2_reset_budget; /* requests an HTTP/2 connection may cancel in a burst (Rapid Reset); 0: off */
    uint64_t max_header_count;   /* request header fields (431 above) */
    uint64_t max_header_bytes;   /* names and values of the request's header fields together (431 above) */
    int log_level;               /* fn_log_level */
    char *log_file;              /* NULL: stderr */
    int access_log;              /* one JSON line per request and one per invocation (default on) */
    gw_overload_config overload;
} gw_server_config;

void gw_server_config_release(gw_server_config *cfg);

/*
 * Loads the entry file and everything it references: parses "server" into *server, and builds the
 * snapshot (see bff_snapshot_build). `threads_override` (0 = none) replaces server.threads before
 * the snapshot's per-thread pools are sized. Returns 0, or -1 with every problem in errs (nothing
 * is left allocated in *server or *snap on failure).
 */
int gw_config_load(const char *file, unsigned threads_override, const char *const *lib_path, size_t nlib_path,
                   gw_server_config *server, bff_snapshot **snap, cfg_errors *errs);
/* The same, for a reload: functions unchanged since `previous` are shared with it (kept warm). */
int gw_config_reload(const char *file, unsigned threads_override, const char *const *lib_path, size_t nlib_path,
                     const bff_snapshot *previous, gw_server_config *server, bff_snapshot **snap, cfg_errors *errs);

#endif
