/* main: bffgate's command line, config load, serving until a signal, and the drain on exit. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o/version.h>
#include <openssl/ssl.h>

#include "../functions/c_runtime.h"
#include "../functions/fn_log.h"
#include "../functions/fn_pool.h"
#include "gw_config.h"
#include "admin.h"
#include "cli.h"
#include "live.h"
#include "metrics.h"
#include "overload.h"
#include "reload.h"
#include "request.h"
#include "server.h"

#ifndef BFFGATE_VERSION
#define BFFGATE_VERSION "unknown"
#endif

#define DEFAULT_CONFIG "config/gateway.json"
#define MAX_LIB_PATH 16

static void usage(FILE *out)
{
    fprintf(out, "Usage: bffgate [OPTIONS] [CONFIG]\n"
                 "       bffgate invoke|routes|openapi ... (see Subcommands)\n"
                 "\n"
                 "Serves the Backend-for-Frontend gateway described by CONFIG (default: " DEFAULT_CONFIG ").\n"
                 "\n"
                 "Options:\n"
                 "  -c, --check           validate CONFIG (and load every function) without serving;\n"
                 "                        prints every error with file, JSON path and reason\n"
                 "  -t, --threads N       worker threads, each with its own event loop (default: server.threads,\n"
                 "                        else the number of CPUs)\n"
                 "  -L, --lib-path DIR    search DIR for C function objects named without a '/' (repeatable;\n"
                 "                        also BFFGATE_LIB_PATH, colon-separated)\n"
                 "  -l, --log-level LVL   debug, info, warn or error (default: server.log_level, else info)\n"
                 "  -r, --ready-file PATH once serving, write the bound ports there (\"listen ADDR PORT\",\n"
                 "                        \"admin ADDR PORT\"): how scripts learn the port chosen for port 0\n"
                 "  -h, --help            show this help\n"
                 "  -V, --version         show the version\n"
                 "\n"
                 "Signals: SIGTERM or SIGINT stop accepting, finish in-flight requests (up to\n"
                 "server.drain_timeout_ms) and exit 0.\n"
                 "\n");
    gw_cli_usage(out);
}

/* Once serving: "listen ADDRESS PORT" per listener and "admin ADDRESS PORT", with the ports actually bound
 * (port 0 in the config resolves here), written aside and renamed into place. */
static int write_ready_file(const char *path, gw_server *srv, const gw_server_config *cfg)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nlisten; ++i)
        fprintf(f, "listen %s %u\n", cfg->listen[i].address, gw_server_port(srv, i));
    if (cfg->has_admin)
        fprintf(f, "admin %s %u\n", cfg->admin.address, gw_admin_port());
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    /* An isolated C function's worker process (started by the gateway itself, never by hand). */
    if (argc > 1 && strcmp(argv[1], "--c-worker") == 0)
        return fn_c_worker_main(argc, argv);
    /* Workers are this binary in the mode above; /proc/self/exe stays valid if the file is replaced. */
    fn_c_set_worker_exe("/proc/self/exe");
    if (argc > 1 && gw_cli_is_command(argv[1])) {
        signal(SIGPIPE, SIG_IGN);
        return gw_cli_run(argc - 1, argv + 1);
    }
    static const struct option options[] = {{"check", no_argument, NULL, 'c'},
                                            {"threads", required_argument, NULL, 't'},
                                            {"lib-path", required_argument, NULL, 'L'},
                                            {"log-level", required_argument, NULL, 'l'},
                                            {"ready-file", required_argument, NULL, 'r'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    int check = 0, opt;
    unsigned threads = 0;
    const char *lib_path[MAX_LIB_PATH];
    size_t nlib_path = 0;
    const char *log_level = NULL;
    const char *ready_file = NULL;
    while ((opt = getopt_long(argc, argv, "ct:L:l:r:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            check = 1;
            break;
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 256) {
                fprintf(stderr, "bffgate: --threads must be an integer in 1..256\n");
                return 2;
            }
            threads = (unsigned)n;
            break;
        }
        case 'L':
            if (nlib_path < MAX_LIB_PATH)
                lib_path[nlib_path++] = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'r':
            ready_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("bffgate %s (h2o %s, %s)\n", BFFGATE_VERSION, H2O_VERSION, "Lua 5.4");
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    const char *config = optind < argc ? argv[optind] : DEFAULT_CONFIG;
    /* When serving, the config path is made absolute (symlinks kept, for ConfigMaps) before the first
     * load, so that reloads, which run with the same absolute path, recognise unchanged functions and
     * keep them warm. --check keeps the path as given, for messages the user recognises. */
    static char config_abs[8192];
    char cwd[4096];
    if (!check && config[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL &&
        (size_t)snprintf(config_abs, sizeof(config_abs), "%s/%s", cwd, config) < sizeof(config_abs))
        config = config_abs;

    char *env_path = getenv("BFFGATE_LIB_PATH") != NULL ? strdup(getenv("BFFGATE_LIB_PATH")) : NULL;
    char *save = NULL;
    for (char *dir = env_path != NULL ? strtok_r(env_path, ":", &save) : NULL; dir != NULL && nlib_path < MAX_LIB_PATH;
         dir = strtok_r(NULL, ":", &save))
        lib_path[nlib_path++] = dir;

    signal(SIGPIPE, SIG_IGN);
    /* A fixed mmap threshold (glibc otherwise raises it after each large free): large blocks, such as a
     * memory-bombing Lua function's tables and strings, go back to the system as soon as they are freed. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    gw_server_config server;
    bff_snapshot *snap = NULL;
    cfg_errors errs = {0};
    if (gw_config_load(config, check ? 1 : threads, lib_path, nlib_path, &server, &snap, &errs) != 0) {
        gw_cli_print_config_errors(&errs);
        cfg_errors_release(&errs);
        free(env_path);
        return 1;
    }
    fn_log_set_level((fn_log_level)server.log_level);
    gw_access_log_set(server.access_log);
    if (!check && server.log_file != NULL) {
        int rc = fn_log_open(server.log_file);
        if (rc != 0) {
            fprintf(stderr, "bffgate: cannot open the log file %s: %s\n", server.log_file, strerror(-rc));
            return 1;
        }
    }
    if (log_level != NULL) {
        fn_log_level level;
        if (fn_log_level_parse(log_level, strlen(log_level), &level) != 0) {
            fprintf(stderr, "bffgate: --log-level must be debug, info, warn or error\n");
            return 2;
        }
        fn_log_set_level(level);
    }
    if (check) {
        size_t nroutes = 0;
        for (size_t i = 0; i < snap->nfrontends; ++i)
            nroutes += snap->frontends[i].nroutes;
        printf("%s: OK (%zu frontends, %zu routes, %zu functions)\n", config, snap->nfrontends, nroutes,
               snap->nfunctions);
        bff_snapshot_release(&snap);
        gw_server_config_release(&server);
        free(env_path);
        return 0;
    }

    /* Signals are taken by this thread alone, with sigwait; workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    fn_pool_set_max_threads(server.function_threads);
    gw_metrics_init(server.threads);
    SSL_load_error_strings();
    SSL_library_init();
    gw_overload_configure(&server.overload, server.threads);
    gw_live_publish(snap);
    gw_server *srv = NULL;
    char err[512];
    if (gw_server_start(&server, &srv, err, sizeof(err)) != 0) {
        fn_log_msg(FN_LOG_ERROR, "%s", err);
        gw_live_clear();
        gw_server_config_release(&server);
        free(env_path);
        return 1;
    }
    fn_log_msg(FN_LOG_INFO, "bffgate %s serving %s (snapshot %llu)", BFFGATE_VERSION, config,
               (unsigned long long)snap->version);
    if (gw_reload_start(config, &server, lib_path, nlib_path, srv, err, sizeof(err)) != 0)
        fn_log_msg(FN_LOG_WARN, "%s: live reload is off", err);
    int status = 0;
    if (server.has_admin && gw_admin_start(&server.admin, err, sizeof(err)) != 0) {
        fn_log_msg(FN_LOG_ERROR, "%s", err);
        status = 1;
    }
    if (status == 0 && ready_file != NULL && write_ready_file(ready_file, srv, &server) != 0) {
        fn_log_msg(FN_LOG_ERROR, "cannot write %s: %s", ready_file, strerror(errno));
        status = 1;
    }
    while (status == 0) {
        /* Woken every 100 ms to sample memory for server.overload.max_memory_mb. */
        struct timespec tick = {0, 100 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            gw_overload_sample();
            continue;
        }
        if (sig == SIGHUP) {
            gw_reload_request();
            continue;
        }
        if (sig == SIGUSR1) {
            int rc = fn_log_reopen(); /* after logrotate moved the file */
            if (rc != 0)
                fn_log_msg(FN_LOG_ERROR, "SIGUSR1: cannot reopen the log file: %s", strerror(-rc));
            continue;
        }
        fn_log_msg(FN_LOG_INFO, "%s: draining (up to %llu ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                   (unsigned long long)server.drain_timeout_ms);
        break;
    }
    /* Not ready any more (/readyz answers 503), no more reloads, then drain the traffic; the admin
     * listener goes last so health checks see the drain. */
    gw_admin_set_draining();
    gw_reload_stop();
    gw_server_stop(srv);
    gw_server_wait(srv);
    gw_admin_stop();
    gw_server_free(&srv);
    gw_live_clear();
    gw_server_config_release(&server);
    free(env_path);
    fn_log_msg(FN_LOG_INFO, "stopped");
    return status;
}
