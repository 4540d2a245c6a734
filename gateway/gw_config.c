/* gw_config: parses the "server" object of the entry config and drives the whole config load. */
#include "gw_config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../functions/fn_log.h"
#include "metrics.h"
#include "request.h"

static const char *const server_keys[] = {"listen",
                                          "threads",
                                          "max_body_bytes",
                                          "drain_timeout_ms",
                                          "log_level",
                                          "function_threads",
                                          "admin",
                                          "log_file",
                                          "access_log",
                                          "overload",
                                          "request_timeout_ms",
                                          "http2_max_streams",
                                          "max_connections",
                                          "http2_reset_budget",
                                          "max_header_count",
                                          "max_header_bytes",
                                          NULL};
static const char *const overload_keys[] = {"max_inflight", "max_memory_mb", "retry_after_s", NULL};
static const char *const admin_keys[] = {"address", "port", NULL};
static const char *const listen_keys[] = {"address", "port", "tls", NULL};
static const char *const tls_keys[] = {"certificate", "key", NULL};

void gw_server_config_release(gw_server_config *cfg)
{
    free(cfg->log_file);
    for (size_t i = 0; i < cfg->nlisten; ++i) {
        free(cfg->listen[i].tls_certificate);
        free(cfg->listen[i].tls_key);
    }
    memset(cfg, 0, sizeof(*cfg));
}

static void parse_tls(gw_listen *l, json_t *tls, const char *file, const char *path, cfg_errors *errs)
{
    cfg_check_keys(errs, file, path, tls, tls_keys);
    const char *cert = NULL, *key = NULL;
    int ok = cfg_get_string(errs, file, path, tls, "certificate", 1, &cert) == 1;
    ok &= cfg_get_string(errs, file, path, tls, "key", 1, &key) == 1;
    if (!ok)
        return;
    l->tls_certificate = cfg_resolve_path(file, cert);
    l->tls_key = cfg_resolve_path(file, key);
    char p[512];
    if (l->tls_certificate != NULL && access(l->tls_certificate, R_OK) != 0) {
        cfg_path_key(p, sizeof(p), path, "certificate");
        cfg_error(errs, file, p, "cannot read \"%s\"", l->tls_certificate);
    }
    if (l->tls_key != NULL && access(l->tls_key, R_OK) != 0) {
        cfg_path_key(p, sizeof(p), path, "key");
        cfg_error(errs, file, p, "cannot read \"%s\"", l->tls_key);
    }
}

static void parse_listen(gw_server_config *cfg, json_t *list, const char *file, cfg_errors *errs)
{
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > GW_MAX_LISTENERS) {
        cfg_error(errs, file, "server.listen", "must be a list of 1 to %d listeners", GW_MAX_LISTENERS);
        return;
    }
    for (size_t i = 0; i < json_array_size(list); ++i) {
        char path[64];
        cfg_path_index(path, sizeof(path), "server.listen", i);
        json_t *item = json_array_get(list, i);
        if (!json_is_object(item)) {
            cfg_error(errs, file, path, "a listener must be an object with \"address\" and \"port\"");
            continue;
        }
        cfg_check_keys(errs, file, path, item, listen_keys);
        gw_listen *l = &cfg->listen[cfg->nlisten++];
        const char *address = "127.0.0.1";
        uint64_t port = GW_DEFAULT_PORT;
        cfg_get_string(errs, file, path, item, "address", 0, &address);
        cfg_get_uint(errs, file, path, item, "port", 0, 65535, 0, &port);
        unsigned char probe[sizeof(struct in6_addr)];
        if (strlen(address) >= sizeof(l->address) ||
            (inet_pton(AF_INET, address, probe) != 1 && inet_pton(AF_INET6, address, probe) != 1)) {
            char p[128];
            cfg_path_key(p, sizeof(p), path, "address");
            cfg_error(errs, file, p, "\"%s\" is not a numeric IPv4 or IPv6 address", address);
        } else {
            snprintf(l->address, sizeof(l->address), "%s", address);
        }
        l->port = (uint16_t)port;
        json_t *tls;
        if (cfg_get_object(errs, file, path, item, "tls", 0, &tls) == 1) {
            char p[128];
            cfg_path_key(p, sizeof(p), path, "tls");
            parse_tls(l, tls, file, p, errs);
        }
    }
}

static void parse_server(gw_server_config *cfg, json_t *root, const char *file, cfg_errors *errs)
{
    cfg->max_body_bytes = GW_DEFAULT_MAX_BODY_BYTES;
    cfg->function_threads = GW_DEFAULT_FUNCTION_THREADS;
    cfg->access_log = 1;
    cfg->drain_timeout_ms = GW_DEFAULT_DRAIN_TIMEOUT_MS;
    cfg->overload.retry_after_s = 1;
    cfg->request_timeout_ms = GW_DEFAULT_REQUEST_TIMEOUT_MS;
    cfg->http2_max_streams = GW_DEFAULT_HTTP2_MAX_STREAMS;
    cfg->http2_reset_budget = GW_DEFAULT_HTTP2_RESET_BUDGET;
    cfg->max_header_count = GW_DEFAULT_MAX_HEADER_COUNT;
    cfg->max_header_bytes = GW_DEFAULT_MAX_HEADER_BYTES;
    cfg->log_level = FN_LOG_INFO;
    json_t *server = NULL;
    if (cfg_get_object(errs, file, "", root, "server", 0, &server) != 1 || json_object_get(server, "listen") == NULL) {
        cfg->nlisten = 1;
        snprintf(cfg->listen[0].address, sizeof(cfg->listen[0].address), "127.0.0.1");
        cfg->listen[0].port = GW_DEFAULT_PORT;
    }
    if (server == NULL)
        return;
    cfg_check_keys(errs, file, "server", server, server_keys);
    if (json_object_get(server, "listen") != NULL)
        parse_listen(cfg, json_object_get(server, "listen"), file, errs);
    uint64_t v;
    if (cfg_get_uint(errs, file, "server", server, "threads", 0, 256, 0, &v) == 1)
        cfg->threads = (unsigned)v;
    if (cfg_get_uint(errs, file, "server", server, "function_threads", 1, 1024, 0, &v) == 1)
        cfg->function_threads = (unsigned)v;
    cfg_get_uint(errs, file, "server", server, "max_body_bytes", 1, (uint64_t)1 << 32, 0, &cfg->max_body_bytes);
    cfg_get_uint(errs, file, "server", server, "drain_timeout_ms", 0, 3600000, 0, &cfg->drain_timeout_ms);
    cfg_get_uint(errs, file, "server", server, "request_timeout_ms", 100, 3600000, 0, &cfg->request_timeout_ms);
    cfg_get_uint(errs, file, "server", server, "http2_max_streams", 1, 1000, 0, &cfg->http2_max_streams);
    cfg_get_uint(errs, file, "server", server, "max_connections", 0, 10000000, 0, &cfg->max_connections);
    cfg_get_uint(errs, file, "server", server, "http2_reset_budget", 0, 1000000, 0, &cfg->http2_reset_budget);
    cfg_get_uint(errs, file, "server", server, "max_header_count", 1, 10000, 0, &cfg->max_header_count);
    cfg_get_uint(errs, file, "server", server, "max_header_bytes", 256, 1 << 20, 0, &cfg->max_header_bytes);
    json_t *admin;
    if (cfg_get_object(errs, file, "server", server, "admin", 0, &admin) == 1) {
        cfg_check_keys(errs, file, "server.admin", admin, admin_keys);
        const char *address = "127.0.0.1";
        uint64_t port = 0;
        cfg_get_string(errs, file, "server.admin", admin, "address", 0, &address);
        cfg_get_uint(errs, file, "server.admin", admin, "port", 0, 65535, 1, &port);
        unsigned char probe[sizeof(struct in6_addr)];
        if (strlen(address) >= sizeof(cfg->admin.address) ||
            (inet_pton(AF_INET, address, probe) != 1 && inet_pton(AF_INET6, address, probe) != 1))
            cfg_error(errs, file, "server.admin.address", "\"%s\" is not a numeric IPv4 or IPv6 address", address);
        snprintf(cfg->admin.address, sizeof(cfg->admin.address), "%s", address);
        cfg->admin.port = (uint16_t)port;
        cfg->has_admin = 1;
    }
    json_t *overload;
    if (cfg_get_object(errs, file, "server", server, "overload", 0, &overload) == 1) {
        cfg_check_keys(errs, file, "server.overload", overload, overload_keys);
        cfg_get_uint(errs, file, "server.overload", overload, "max_inflight", 0, 10000000, 0,
                     &cfg->overload.max_inflight);
        cfg_get_uint(errs, file, "server.overload", overload, "max_memory_mb", 0, (uint64_t)1 << 30, 0,
                     &cfg->overload.max_memory_mb);
        if (cfg_get_uint(errs, file, "server.overload", overload, "retry_after_s", 1, 3600, 0, &v) == 1)
            cfg->overload.retry_after_s = (unsigned)v;
    }
    const char *log_file = NULL;
    if (cfg_get_string(errs, file, "server", server, "log_file", 0, &log_file) == 1)
        cfg->log_file = cfg_resolve_path(file, log_file);
    cfg_get_bool(errs, file, "server", server, "access_log", &cfg->access_log);
    const char *level = NULL;
    if (cfg_get_string(errs, file, "server", server, "log_level", 0, &level) == 1) {
        fn_log_level parsed;
        if (fn_log_level_parse(level, strlen(level), &parsed) != 0)
            cfg_error(errs, file, "server.log_level", "must be \"debug\", \"info\", \"warn\" or \"error\"");
        else
            cfg->log_level = (int)parsed;
    }
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int gw_config_load(const char *file, unsigned threads_override, const char *const *lib_path, size_t nlib_path,
                   gw_server_config *server, bff_snapshot **snap, cfg_errors *errs)
{
    return gw_config_reload(file, threads_override, lib_path, nlib_path, NULL, server, snap, errs);
}

int gw_config_reload(const char *file, unsigned threads_override, const char *const *lib_path, size_t nlib_path,
                     const bff_snapshot *previous, gw_server_config *server, bff_snapshot **snap, cfg_errors *errs)
{
    size_t before = errs->count;
    memset(server, 0, sizeof(*server));
    json_t *root = cfg_load_file(errs, file);
    if (root == NULL)
        return -1;
    parse_server(server, root, file, errs);
    if (threads_override != 0)
        server->threads = threads_override;
    if (server->threads == 0)
        server->threads = cpu_count();
    bff_snapshot_options opts = {
        server->threads, 1, lib_path, nlib_path, gw_request_admit, previous, gw_metrics_route_id, GW_METRICS_UPSTREAM};
    bff_snapshot *built = NULL;
    int rc = bff_snapshot_build(root, file, &opts, &built, errs);
    json_decref(root);
    if (rc != 0 || errs->count != before) {
        bff_snapshot_release(&built);
        gw_server_config_release(server);
        return -1;
    }
    *snap = built;
    return 0;
}
