/* reload: an inotify-driven reloader thread, serialized reloads, and the reload status. */
#include "reload.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../functions/fn_log.h"
#include "live.h"
#include "request.h"
#include "overload.h"
#include "server.h"

#define DEBOUNCE_MS 50
#define DEBOUNCE_MAX_MS 500 /* changes that never pause still reload this often */
#define WATCH_DEPTH 3
#define WATCH_EVENTS                                                                                                   \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MODIFY)

static struct {
    pthread_mutex_t lock; /* serializes reloads; guards everything below */
    char *config;
    gw_server_config running;
    const char *const *lib_path;
    size_t nlib_path;
    struct gw_server *server;
    int inotify_fd;
    int wake_fd;
    pthread_t thread;
    int started;
    atomic_int stopping;
    uint64_t reloads, failures;
    char last_reason[64];
    int last_ok;
    int have_last;
    time_t last_at;
    double last_ms;
    fn_buf last_details;    /* JSON members: "errors": [...], "restartNeeded": [...] */
    bff_snapshot *previous; /* the snapshot the last reload replaced, for rollback (one reference) */
    /* Guards the counters and last_* fields only, for short moments, so that /metrics, /admin/status and
     * the health checks behind them on the admin thread never wait for a reload in progress. */
    pthread_mutex_t status_lock;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER, .status_lock = PTHREAD_MUTEX_INITIALIZER, .inotify_fd = -1, .wake_fd = -1};

static void watch_tree(const char *dir, int depth)
{
    if (R.inotify_fd < 0 || inotify_add_watch(R.inotify_fd, dir, WATCH_EVENTS) < 0 || depth >= WATCH_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(path, depth + 1);
    }
    closedir(d);
}

static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Watches the config tree and the directory of every function of the live snapshot. Under R.lock. */
static void refresh_watches(void)
{
    char dir[4096];
    dir_of(R.config, dir, sizeof(dir));
    watch_tree(dir, 0);
    bff_snapshot *snap = gw_live_acquire();
    for (size_t i = 0; snap != NULL && i < snap->nfunctions; ++i) {
        if (snap->functions[i].fn == NULL)
            continue;
        dir_of(snap->functions[i].fn->path, dir, sizeof(dir));
        if (R.inotify_fd >= 0)
            inotify_add_watch(R.inotify_fd, dir, WATCH_EVENTS);
    }
    bff_snapshot_release(&snap);
}

static int same_listen(const gw_listen *a, const gw_listen *b)
{
    return strcmp(a->address, b->address) == 0 && a->port == b->port &&
           (a->tls_certificate == NULL) == (b->tls_certificate == NULL) &&
           (a->tls_certificate == NULL || strcmp(a->tls_certificate, b->tls_certificate) == 0) &&
           (a->tls_key == NULL || b->tls_key == NULL || strcmp(a->tls_key, b->tls_key) == 0);
}

/* Appends "restartNeeded": [...] for server settings that differ from the running ones. */
static size_t note_restart_needed(const gw_server_config *next, fn_buf *out)
{
    const char *changed[16];
    size_t n = 0;
    int listen_same = next->nlisten == R.running.nlisten;
    for (size_t i = 0; listen_same && i < next->nlisten; ++i)
        listen_same = same_listen(&next->listen[i], &R.running.listen[i]);
    if (!listen_same)
        changed[n++] = "server.listen";
    if (next->has_admin != R.running.has_admin || (next->has_admin && !same_listen(&next->admin, &R.running.admin)))
        changed[n++] = "server.admin";
    if (next->max_body_bytes != R.running.max_body_bytes)
        changed[n++] = "server.max_body_bytes";
    if (next->drain_timeout_ms != R.running.drain_timeout_ms)
        changed[n++] = "server.drain_timeout_ms";
    if (next->function_threads != R.running.function_threads)
        changed[n++] = "server.function_threads";
    if (next->request_timeout_ms != R.running.request_timeout_ms)
        changed[n++] = "server.request_timeout_ms";
    if (next->http2_max_streams != R.running.http2_max_streams)
        changed[n++] = "server.http2_max_streams";
    if (next->max_connections != R.running.max_connections)
        changed[n++] = "server.max_connections";
    if (next->http2_reset_budget != R.running.http2_reset_budget)
        changed[n++] = "server.http2_reset_budget";
    if (next->max_header_count != R.running.max_header_count || next->max_header_bytes != R.running.max_header_bytes)
        changed[n++] = "server.max_header_count/max_header_bytes";
    if ((next->log_file == NULL) != (R.running.log_file == NULL) ||
        (next->log_file != NULL && strcmp(next->log_file, R.running.log_file) != 0))
        changed[n++] = "server.log_file";
    fn_buf_append_str(out, ",\"restartNeeded\":[");
    for (size_t i = 0; i < n; ++i) {
        if (i > 0)
            fn_buf_append_char(out, ',');
        fn_buf_append_json_string(out, changed[i], strlen(changed[i]));
        fn_log_msg(FN_LOG_WARN, "reload: %s changed: it takes effect after a restart; the rest is applied", changed[i]);
    }
    fn_buf_append_char(out, ']');
    return n;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void append_last(fn_buf *out)
{
    char stamp[32] = "";
    struct tm tm;
    gmtime_r(&R.last_at, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char head[256];
    snprintf(head, sizeof(head), "{\"reason\":\"%s\",\"ok\":%s,\"at\":\"%s\",\"durationMs\":%.1f", R.last_reason,
             R.last_ok ? "true" : "false", stamp, R.last_ms);
    fn_buf_append_str(out, head);
    if (R.last_details.len > 0)
        fn_buf_append(out, R.last_details.data, R.last_details.len);
    fn_buf_append_char(out, '}');
}

int gw_reload_now(const char *reason, fn_buf *result)
{
    pthread_mutex_lock(&R.lock);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bff_snapshot *prev = gw_live_acquire();
    gw_server_config next;
    bff_snapshot *snap = NULL;
    cfg_errors errs = {0};
    int rc = R.config != NULL
                 ? gw_config_reload(R.config, R.running.threads, R.lib_path, R.nlib_path, prev, &next, &snap, &errs)
                 : -1;
    fn_buf details = FN_BUF_INIT; /* built here, then swapped in under the status lock */
    if (rc != 0) {
        fn_buf_append_str(&details, ",\"errors\":[");
        for (size_t i = 0; i < errs.count; ++i) {
            const char *e = errs.items[i] != NULL ? errs.items[i] : "(out of memory)";
            fn_log_msg(FN_LOG_ERROR, "reload (%s) failed, the running version keeps serving: %s", reason, e);
            if (i > 0)
                fn_buf_append_char(&details, ',');
            fn_buf_append_json_string(&details, e, strlen(e));
        }
        fn_buf_append_char(&details, ']');
    } else {
        note_restart_needed(&next, &details);
        fn_log_set_level((fn_log_level)next.log_level);
        gw_access_log_set(next.access_log);
        gw_overload_reconfigure(&next.overload);
        uint64_t version = snap->version;
        gw_live_publish(snap); /* takes the reference */
        if (R.server != NULL)
            gw_server_snapshot_changed(R.server);
        fn_log_msg(FN_LOG_INFO, "reload (%s): version %llu is live (%.1f ms)", reason, (unsigned long long)version,
                   ms_since(&t0));
        /* Keep the replaced snapshot for a rollback (it stays loaded: its states and objects). */
        bff_snapshot_release(&R.previous);
        R.previous = prev;
        prev = NULL;
        gw_server_config_release(&next);
    }
    bff_snapshot_release(&prev);
    cfg_errors_release(&errs);
    pthread_mutex_lock(&R.status_lock);
    if (rc != 0)
        ++R.failures;
    else
        ++R.reloads;
    fn_buf_release(&R.last_details);
    R.last_details = details;
    snprintf(R.last_reason, sizeof(R.last_reason), "%s", reason);
    R.last_ok = rc == 0;
    R.have_last = 1;
    R.last_at = time(NULL);
    R.last_ms = ms_since(&t0);
    if (result != NULL)
        append_last(result);
    pthread_mutex_unlock(&R.status_lock);
    refresh_watches();
    pthread_mutex_unlock(&R.lock);
    return rc == 0 ? 0 : -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Only what can change the config counts: JSON, Lua and shared objects, key files (PEM, JWK(S), secrets),
 * directories, and the ..data swap of a ConfigMap. Log files, editor swap files and the like in the same
 * directory do not trigger reloads. */
static int is_relevant(const struct inotify_event *ev)
{
    if (ev->mask & (IN_ISDIR | IN_DELETE_SELF | IN_IGNORED | IN_Q_OVERFLOW))
        return 1;
    if (ev->len == 0)
        return 1;
    const char *name = ev->name;
    static const char *const suffixes[] = {".json", ".lua", ".so", ".pem", ".pub", ".key", ".jwk", ".jwks", ".secret"};
    if (strncmp(name, "..", 2) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); ++i) {
        if (ends_with(name, suffixes[i]))
            return 1;
    }
    return 0;
}

static void *reloader_main(void *arg)
{
    (void)arg;
    int pending = 0;
    uint64_t first_ns = 0, last_ns = 0;
    const uint64_t debounce = DEBOUNCE_MS * 1000000ULL, patience = DEBOUNCE_MAX_MS * 1000000ULL;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&R.stopping)) {
        int timeout = -1;
        if (pending) {
            uint64_t due = last_ns + debounce < first_ns + patience ? last_ns + debounce : first_ns + patience;
            uint64_t now = now_ns();
            timeout = due > now ? (int)((due - now) / 1000000ULL) + 1 : 0;
        }
        struct pollfd fds[2] = {{R.wake_fd, POLLIN, 0}, {R.inotify_fd, POLLIN, 0}};
        int n = poll(fds, R.inotify_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (atomic_load(&R.stopping))
            break;
        if (n > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            if (read(R.wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
                gw_reload_now("SIGHUP", NULL);
        }
        if (n > 0 && R.inotify_fd >= 0 && (fds[1].revents & POLLIN)) {
            ssize_t got;
            int relevant = 0;
            while ((got = read(R.inotify_fd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + got;) {
                    const struct inotify_event *ev = (const struct inotify_event *)p;
                    relevant |= is_relevant(ev);
                    p += sizeof(*ev) + ev->len;
                }
            }
            if (relevant) {
                last_ns = now_ns();
                if (!pending)
                    first_ns = last_ns;
                pending = 1;
            }
        }
        /* DEBOUNCE_MS of quiet after the last relevant change, or DEBOUNCE_MAX_MS after the first. */
        uint64_t now = now_ns();
        if (pending && (now >= last_ns + debounce || now >= first_ns + patience)) {
            pending = 0;
            gw_reload_now("file change", NULL);
        }
    }
    return NULL;
}

int gw_reload_start(const char *config, const gw_server_config *running, const char *const *lib_path, size_t nlib_path,
                    struct gw_server *server, char *err, size_t cap)
{
    pthread_mutex_lock(&R.lock);
    /* Absolute, but symlinks NOT resolved: with a ConfigMap the file is a symlink through ..data, and
     * the reload must follow the swapped link, not the directory it pointed to at start. */
    char cwd[4096];
    if (config[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
        if (asprintf(&R.config, "%s/%s", cwd, config) < 0)
            R.config = NULL;
    } else {
        R.config = strdup(config);
    }
    R.running = *running;
    R.running.log_file = running->log_file != NULL ? strdup(running->log_file) : NULL;
    /* The TLS paths are compared by value: keep our own copies. */
    for (size_t i = 0; i < R.running.nlisten; ++i) {
        if (running->listen[i].tls_certificate != NULL)
            R.running.listen[i].tls_certificate = strdup(running->listen[i].tls_certificate);
        if (running->listen[i].tls_key != NULL)
            R.running.listen[i].tls_key = strdup(running->listen[i].tls_key);
    }
    R.lib_path = lib_path;
    R.nlib_path = nlib_path;
    R.server = server;
    R.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (R.inotify_fd < 0)
        fn_log_msg(FN_LOG_WARN, "inotify is unavailable (%s): reload with SIGHUP or POST /admin/reload",
                   strerror(errno));
    R.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    refresh_watches();
    atomic_store(&R.stopping, 0);
    int rc = pthread_create(&R.thread, NULL, reloader_main, NULL);
    R.started = rc == 0;
    pthread_mutex_unlock(&R.lock);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the reloader thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

void gw_reload_request(void)
{
    uint64_t one = 1;
    if (R.wake_fd >= 0 && write(R.wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        fn_log_msg(FN_LOG_WARN, "cannot signal the reloader: %s", strerror(errno));
}

void gw_reload_stop(void)
{
    if (R.started) {
        atomic_store(&R.stopping, 1);
        gw_reload_request();
        pthread_join(R.thread, NULL);
        R.started = 0;
    }
    pthread_mutex_lock(&R.lock);
    if (R.inotify_fd >= 0)
        close(R.inotify_fd);
    if (R.wake_fd >= 0)
        close(R.wake_fd);
    R.inotify_fd = R.wake_fd = -1;
    gw_server_config_release(&R.running);
    free(R.config);
    R.config = NULL;
    bff_snapshot_release(&R.previous);
    pthread_mutex_unlock(&R.lock);
    pthread_mutex_lock(&R.status_lock);
    fn_buf_release(&R.last_details);
    pthread_mutex_unlock(&R.status_lock);
}

void gw_reload_counts(uint64_t *reloads, uint64_t *failures)
{
    pthread_mutex_lock(&R.status_lock);
    *reloads = R.reloads;
    *failures = R.failures;
    pthread_mutex_unlock(&R.status_lock);
}

int gw_reload_rollback(fn_buf *result)
{
    pthread_mutex_lock(&R.lock);
    int rc = -1;
    char msg[160];
    if (R.previous == NULL) {
        snprintf(msg, sizeof(msg), "{\"ok\":false,\"error\":\"no previous version to roll back to\"}");
    } else {
        bff_snapshot *current = gw_live_acquire();
        uint64_t version = R.previous->version;
        gw_live_publish(R.previous); /* takes the reference */
        R.previous = current;        /* a second rollback goes forward again */
        if (R.server != NULL)
            gw_server_snapshot_changed(R.server);
        fn_log_msg(FN_LOG_WARN, "rollback: version %llu is live again", (unsigned long long)version);
        snprintf(msg, sizeof(msg), "{\"ok\":true,\"version\":%llu}", (unsigned long long)version);
        rc = 0;
    }
    if (result != NULL)
        fn_buf_append_str(result, msg);
    pthread_mutex_unlock(&R.lock);
    return rc;
}

void gw_reload_status_json(fn_buf *out)
{
    pthread_mutex_lock(&R.status_lock);
    bff_snapshot *snap = gw_live_acquire();
    char head[160];
    snprintf(head, sizeof(head), "\"version\":%llu,\"reloads\":%llu,\"reloadFailures\":%llu,\"lastReload\":",
             snap != NULL ? (unsigned long long)snap->version : 0ULL, (unsigned long long)R.reloads,
             (unsigned long long)R.failures);
    fn_buf_append_str(out, head);
    if (R.have_last)
        append_last(out);
    else
        fn_buf_append_str(out, "null");
    fn_buf_append_str(out, ",\"functions\":[");
    for (size_t i = 0; snap != NULL && i < snap->nfunctions; ++i) {
        const fn_function *fn = snap->functions[i].fn;
        if (fn == NULL)
            continue;
        char stamp[32];
        struct tm tm;
        time_t at = (time_t)fn->loaded_at;
        gmtime_r(&at, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (i > 0)
            fn_buf_append_char(out, ',');
        fn_buf_append_str(out, "{\"name\":");
        fn_buf_append_json_string(out, fn->name, strlen(fn->name));
        fn_buf_append_str(out, fn->kind == FN_KIND_LUA ? ",\"kind\":\"lua\",\"version\":\""
                                                       : ",\"kind\":\"c\",\"version\":\"");
        fn_buf_append_str(out, fn->version);
        fn_buf_append_str(out, "\",\"path\":");
        fn_buf_append_json_string(out, fn->path, strlen(fn->path));
        fn_buf_append_str(out, ",\"loadedAt\":\"");
        fn_buf_append_str(out, stamp);
        fn_buf_append_str(out, "\"}");
    }
    fn_buf_append_char(out, ']');
    bff_snapshot_release(&snap);
    pthread_mutex_unlock(&R.status_lock);
}
