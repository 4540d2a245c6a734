/* c_isolated: C functions run in pre-forked worker processes (see c_runtime.h, fn_c_isolation).
 *
 * The gateway starts workers by executing its own binary in worker mode (fn_c_worker_main), with one end of a
 * socketpair as descriptor 3. A worker loads the object, checks it like the in-process loader, limits itself
 * (address space, CPU seconds, no core files, no new files), says READY (or why not), then serves one call at a
 * time: a frame in (the event), a frame out (the response). A pool thread of the gateway does the exchange with a
 * deadline; a worker that dies (a crash, an abort, its memory or CPU limit) or passes the deadline is killed,
 * reaped and replaced by the next call that needs one.
 *
 * Frames: a 32-bit length, then fields: u32/u64 little-endian, strings as a u32 length (0xffffffff: NULL) and
 * the bytes. */
#include "c_isolated.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fn_buf.h"

extern char **environ;

#define FRAME_MAX (64u << 20) /* an event or a response larger than this is refused */
#define WORKER_FD 3

static char worker_exe[512];

void fn_c_set_worker_exe(const char *path)
{
    snprintf(worker_exe, sizeof(worker_exe), "%s", path != NULL ? path : "");
}

/* ---- encoding ---- */

static int put_u32(fn_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fn_buf_append(b, x, 4);
}

static int put_u64(fn_buf *b, uint64_t v)
{
    return put_u32(b, (uint32_t)v) | put_u32(b, (uint32_t)(v >> 32));
}

static int put_str(fn_buf *b, const char *p, size_t len)
{
    if (p == NULL)
        return put_u32(b, 0xffffffffu);
    return put_u32(b, (uint32_t)len) | fn_buf_append(b, p, len);
}

typedef struct reader {
    const unsigned char *p, *end;
    int bad;
} reader;

static uint32_t get_u32(reader *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static uint64_t get_u64(reader *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static bfg_str get_str(reader *r)
{
    uint32_t n = get_u32(r);
    if (n == 0xffffffffu || r->bad)
        return (bfg_str){NULL, 0};
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return (bfg_str){NULL, 0};
    }
    bfg_str s = {(const char *)r->p, n};
    r->p += n;
    return s;
}

static int put_pairs(fn_buf *b, const bfg_pair *pairs, size_t n)
{
    int rc = put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; ++i)
        rc |= put_str(b, pairs[i].name.ptr, pairs[i].name.len) | put_str(b, pairs[i].value.ptr, pairs[i].value.len);
    return rc;
}

static bfg_pair *get_pairs(reader *r, size_t *n)
{
    uint32_t count = get_u32(r);
    if (r->bad || count > (uint32_t)(r->end - r->p) / 8) {
        r->bad = 1;
        return NULL;
    }
    *n = count;
    bfg_pair *pairs = calloc(count > 0 ? count : 1, sizeof(*pairs));
    if (pairs == NULL) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < count; ++i) {
        pairs[i].name = get_str(r);
        pairs[i].value = get_str(r);
    }
    return pairs;
}

/* Writes the frame's length (little-endian, the bytes after the 4-byte prefix) into its prefix. Returns 0, or -1
 * when the frame is larger than FRAME_MAX. */
static int close_frame(fn_buf *b)
{
    if (b->len - 4 > FRAME_MAX)
        return -1;
    uint32_t len = (uint32_t)(b->len - 4);
    unsigned char x[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 24)};
    memcpy(b->data, x, 4);
    return 0;
}

static int encode_event(fn_buf *b, const bfg_event *ev, size_t memory_limit)
{
    int rc = put_u32(b, 0) | put_u64(b, memory_limit); /* the length is filled in last */
    rc |= put_str(b, ev->method.ptr, ev->method.len) | put_str(b, ev->path.ptr, ev->path.len);
    rc |= put_str(b, ev->route.ptr, ev->route.len) | put_str(b, ev->frontend.ptr, ev->frontend.len);
    rc |= put_str(b, ev->request_id.ptr, ev->request_id.len) | put_str(b, ev->body.ptr, ev->body.len);
    rc |= put_str(b, ev->claims.ptr, ev->claims.len);
    rc |= put_pairs(b, ev->params, ev->nparams) | put_pairs(b, ev->query, ev->nquery);
    rc |= put_pairs(b, ev->headers, ev->nheaders);
    return rc != 0 ? -1 : close_frame(b);
}

static int encode_response(fn_buf *b, int rc, const fn_response *res)
{
    int e = put_u32(b, 0) | put_u32(b, (uint32_t)rc) | put_u32(b, (uint32_t)res->status);
    e |= put_u64(b, res->report.duration_ns) | put_u64(b, res->report.peak_bytes);
    e |= put_str(b, res->error, strlen(res->error)) | put_u32(b, (uint32_t)res->nheaders);
    for (size_t i = 0; i < res->nheaders; ++i)
        e |= put_str(b, res->headers[i].name, strlen(res->headers[i].name)) |
             put_str(b, res->headers[i].value, res->headers[i].value_len);
    e |= put_str(b, res->body.data != NULL ? res->body.data : "", res->body.len);
    return e != 0 ? -1 : close_frame(b);
}

/* ---- blocking I/O with a deadline (0: none) ---- */

static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        int ms = -1;
        if (deadline_ns != 0) {
            uint64_t now = fn_now_ns();
            if (now >= deadline_ns)
                return -ETIMEDOUT;
            ms = (int)((deadline_ns - now + 999999) / 1000000);
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int write_all(int fd, const char *p, size_t len, uint64_t deadline_ns)
{
    while (len > 0) {
        int rc = wait_fd(fd, POLLOUT, deadline_ns);
        if (rc != 0)
            return rc;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -EPIPE;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
    char *p = buf;
    while (len > 0) {
        int rc = wait_fd(fd, POLLIN, deadline_ns);
        if (rc != 0)
            return rc;
        ssize_t n = recv(fd, p, len, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return -EPIPE;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* Reads one frame into a malloc'd buffer. */
static int read_frame(int fd, unsigned char **out, size_t *len, uint64_t deadline_ns)
{
    unsigned char x[4];
    int rc = read_all(fd, x, 4, deadline_ns);
    if (rc != 0)
        return rc;
    uint32_t n = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
    if (n > FRAME_MAX)
        return -EPROTO;
    unsigned char *data = malloc(n > 0 ? n : 1);
    if (data == NULL)
        return -ENOMEM;
    if ((rc = read_all(fd, data, n, deadline_ns)) != 0) {
        free(data);
        return rc;
    }
    *out = data;
    *len = n;
    return 0;
}

/* ---- the worker process ---- */

static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    int n = f != NULL ? fscanf(f, "%llu", &pages) : 0;
    if (f != NULL)
        fclose(f);
    return n == 1 ? (long)(pages * (unsigned long long)sysconf(_SC_PAGESIZE)) : 0;
}

static void send_ready(const char *error)
{
    fn_buf b = FN_BUF_INIT;
    put_u32(&b, 0);
    put_str(&b, error, error != NULL ? strlen(error) : 0);
    uint32_t len = (uint32_t)(b.len - 4);
    unsigned char x[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 24)};
    memcpy(b.data, x, 4);
    write_all(WORKER_FD, b.data, b.len, 0);
    fn_buf_release(&b);
}

int fn_c_worker_main(int argc, char **argv)
{
    /* argv: bffgate --c-worker OBJECT SYMBOL MEMORY_MB CPU_S */
    if (argc != 6)
        return 2;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the gateway (the thread that started it) */
    if (getppid() == 1)
        return 1;
    close_range(WORKER_FD + 1, ~0U, 0); /* anything the gateway left open without close-on-exec */
    signal(SIGPIPE, SIG_IGN);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    char err[600];
    void *handle = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(err, sizeof(err), "cannot load the C object: %s", dlerror());
        send_ready(err);
        return 1;
    }
    const unsigned *abi = dlsym(handle, "bfg_abi_version");
    bfg_handler_fn handler;
    *(void **)&handler = dlsym(handle, argv[3]);
    bfg_init_fn init;
    *(void **)&init = dlsym(handle, "bfg_init");
    if (abi == NULL || *abi != BFG_ABI_VERSION || handler == NULL) {
        snprintf(err, sizeof(err),
                 abi == NULL               ? "no bfg_abi_version symbol: not a bffgate C function"
                 : *abi != BFG_ABI_VERSION ? "built for another C function ABI version"
                                           : "no handler symbol \"%s\"",
                 argv[3]);
        send_ready(err);
        return 1;
    }
    int rc = init != NULL ? init() : 0;
    if (rc != 0) {
        snprintf(err, sizeof(err), "bfg_init failed with %d", rc);
        send_ready(err);
        return 1;
    }
    /* The limits come after loading: the address space a worker may add to what it has mapped by now. */
    uint64_t memory = strtoull(argv[4], NULL, 10) << 20, cpu = strtoull(argv[5], NULL, 10);
    struct rlimit as = {(rlim_t)vm_size_bytes() + memory, (rlim_t)vm_size_bytes() + memory};
    struct rlimit cpu_limit = {(rlim_t)cpu, (rlim_t)cpu + 1};
    struct rlimit files = {WORKER_FD + 1, WORKER_FD + 1}; /* stdio and the socket: no new descriptors */
    setrlimit(RLIMIT_AS, &as);
    setrlimit(RLIMIT_CPU, &cpu_limit);
    setrlimit(RLIMIT_NOFILE, &files);
    send_ready(NULL);
    for (;;) {
        unsigned char *frame;
        size_t len;
        if (read_frame(WORKER_FD, &frame, &len, 0) != 0)
            return 0; /* the gateway closed the connection: done */
        reader r = {frame, frame + len, 0};
        size_t memory_limit = (size_t)get_u64(&r);
        bfg_event ev = {.abi_version = BFG_ABI_VERSION};
        ev.method = get_str(&r);
        ev.path = get_str(&r);
        ev.route = get_str(&r);
        ev.frontend = get_str(&r);
        ev.request_id = get_str(&r);
        ev.body = get_str(&r);
        ev.claims = get_str(&r);
        bfg_pair *params = get_pairs(&r, &ev.nparams), *query = get_pairs(&r, &ev.nquery),
                 *headers = get_pairs(&r, &ev.nheaders);
        ev.params = params;
        ev.query = query;
        ev.headers = headers;
        fn_response res;
        fn_response_init(&res);
        if (r.bad) {
            snprintf(res.error, sizeof(res.error), "the event did not arrive whole");
            rc = -EPROTO;
        } else {
            rc = fn__c_invoke(handler, &ev, memory_limit, &res);
        }
        fn_buf out = FN_BUF_INIT;
        int sent = encode_response(&out, rc, &res) == 0 ? write_all(WORKER_FD, out.data, out.len, 0) : -1;
        fn_buf_release(&out);
        fn_response_release(&res);
        free(params);
        free(query);
        free(headers);
        free(frame);
        if (sent != 0)
            return 1;
    }
}

/* ---- the gateway's side ---- */

typedef struct c_worker {
    pid_t pid;
    int fd;
} c_worker;

struct c_iso {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    c_worker *idle;
    size_t nidle;
    size_t live; /* started and not yet reaped */
    fn_c_isolation opt;
    char *object; /* the private copy workers load */
    char *symbol;
    char *name;
};

/* Why a worker process ended, for the log and the client's 502. */
static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(out, cap, "ended");
}

static void worker_kill(c_worker *w, char *why, size_t cap)
{
    close(w->fd);
    kill(w->pid, SIGKILL);
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (why != NULL)
        describe_exit(status, why, cap);
}

static int worker_spawn(c_iso *iso, c_worker *out, uint64_t deadline_ns, char *err, size_t cap)
{
    if (worker_exe[0] == '\0') {
        snprintf(err, cap, "isolated C functions run in the bffgate binary's worker mode, not available here");
        return -ENOTSUP;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, cap, "socketpair: %s", strerror(errno));
        return -errno;
    }
    char memory[24], cpu[24];
    snprintf(memory, sizeof(memory), "%llu", (unsigned long long)iso->opt.memory_mb);
    snprintf(cpu, sizeof(cpu), "%llu", (unsigned long long)iso->opt.cpu_s);
    char *args[] = {worker_exe, "--c-worker", iso->object, iso->symbol, memory, cpu, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], WORKER_FD); /* dup2 clears close-on-exec on the copy */
    pid_t pid;
    int rc = posix_spawn(&pid, worker_exe, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        snprintf(err, cap, "cannot start a worker process: %s", strerror(rc));
        return -rc;
    }
    c_worker w = {pid, sv[0]};
    unsigned char *frame = NULL;
    size_t len = 0;
    uint64_t ready_by = fn_now_ns() + 10000000000ULL; /* 10 s to load, or the call's deadline if sooner */
    rc = read_frame(w.fd, &frame, &len, deadline_ns != 0 && deadline_ns < ready_by ? deadline_ns : ready_by);
    if (rc != 0) {
        char why[128];
        worker_kill(&w, why, sizeof(why));
        snprintf(err, cap, "the worker process did not start: %s", why);
        return -EIO;
    }
    reader r = {frame, frame + len, 0};
    bfg_str e = get_str(&r);
    if (e.ptr != NULL || r.bad) {
        snprintf(err, cap, "%.*s", (int)e.len, e.ptr != NULL ? e.ptr : "a malformed ready message");
        free(frame);
        worker_kill(&w, NULL, 0);
        return -EINVAL;
    }
    free(frame);
    *out = w;
    return 0;
}

c_iso *fn__c_iso_new(const char *name, const char *object, const char *symbol, const fn_c_isolation *opt, char *err,
                     size_t cap)
{
    c_iso *iso = calloc(1, sizeof(*iso));
    if (iso == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&iso->lock, NULL);
    pthread_cond_init(&iso->freed, NULL);
    iso->opt = *opt;
    iso->object = strdup(object);
    iso->symbol = strdup(symbol);
    iso->name = strdup(name);
    iso->idle = calloc(opt->processes, sizeof(*iso->idle));
    if (iso->object == NULL || iso->symbol == NULL || iso->name == NULL || iso->idle == NULL) {
        snprintf(err, cap, "out of memory");
        fn__c_iso_free(iso);
        return NULL;
    }
    /* A first worker checks the object now (ABI, handler, bfg_init), where its faults cannot hurt; it is not
     * kept: workers that serve calls are started by the pool threads that need them, which live as long as the
     * process (a worker dies with the thread that started it: PR_SET_PDEATHSIG), unlike the thread that loads
     * a config (the reloader's ends at shutdown). */
    c_worker w;
    if (worker_spawn(iso, &w, fn_now_ns() + 10000000000ULL, err, cap) != 0) {
        fn__c_iso_free(iso);
        return NULL;
    }
    worker_kill(&w, NULL, 0);
    return iso;
}

void fn__c_iso_free(c_iso *iso)
{
    if (iso == NULL)
        return;
    for (size_t i = 0; i < iso->nidle; ++i)
        worker_kill(&iso->idle[i], NULL, 0);
    if (iso->object != NULL)
        unlink(iso->object);
    free(iso->idle);
    free(iso->object);
    free(iso->symbol);
    free(iso->name);
    pthread_cond_destroy(&iso->freed);
    pthread_mutex_destroy(&iso->lock);
    free(iso);
}

static atomic_uint_fast64_t crashes, kills;

void fn_c_isolated_stats(uint64_t *crashed, uint64_t *killed)
{
    *crashed = atomic_load(&crashes);
    *killed = atomic_load(&kills);
}

/* Takes an idle worker, or starts one within the pool's size, or waits for one until the deadline. */
static int acquire(c_iso *iso, c_worker *out, uint64_t deadline_ns, char *err, size_t cap)
{
    pthread_mutex_lock(&iso->lock);
    while (iso->nidle == 0 && iso->live >= iso->opt.processes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = fn_now_ns(), left = deadline_ns > now ? deadline_ns - now : 0;
        if (left == 0) {
            pthread_mutex_unlock(&iso->lock);
            snprintf(err, cap, "every worker process of the isolated C function is busy");
            return -ETIMEDOUT;
        }
        uint64_t at = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + left;
        ts.tv_sec = (time_t)(at / 1000000000ULL);
        ts.tv_nsec = (long)(at % 1000000000ULL);
        pthread_cond_timedwait(&iso->freed, &iso->lock, &ts);
    }
    if (iso->nidle > 0) {
        *out = iso->idle[--iso->nidle];
        pthread_mutex_unlock(&iso->lock);
        return 0;
    }
    ++iso->live;
    pthread_mutex_unlock(&iso->lock);
    int rc = worker_spawn(iso, out, deadline_ns, err, cap);
    if (rc != 0) {
        pthread_mutex_lock(&iso->lock);
        --iso->live;
        pthread_cond_signal(&iso->freed);
        pthread_mutex_unlock(&iso->lock);
    }
    return rc;
}

static void give_back(c_iso *iso, c_worker *w, int healthy)
{
    if (!healthy)
        worker_kill(w, NULL, 0);
    pthread_mutex_lock(&iso->lock);
    if (healthy)
        iso->idle[iso->nidle++] = *w;
    else
        --iso->live;
    pthread_cond_signal(&iso->freed);
    pthread_mutex_unlock(&iso->lock);
}

int fn__c_iso_call(c_iso *iso, const bfg_event *ev, size_t memory_limit, uint64_t deadline_ns, fn_response *res)
{
    c_worker w;
    int rc = acquire(iso, &w, deadline_ns, res->error, sizeof(res->error));
    if (rc != 0)
        return rc == -ETIMEDOUT ? rc : -EIO;
    fn_buf req = FN_BUF_INIT;
    if (encode_event(&req, ev, memory_limit) != 0) {
        fn_buf_release(&req);
        give_back(iso, &w, 1);
        snprintf(res->error, sizeof(res->error), "the event is too large for an isolated C function");
        return -EINVAL;
    }
    uint64_t started = fn_now_ns();
    rc = write_all(w.fd, req.data, req.len, deadline_ns);
    fn_buf_release(&req);
    unsigned char *frame = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = read_frame(w.fd, &frame, &len, deadline_ns);
    if (rc != 0) {
        char why[128];
        worker_kill(&w, why, sizeof(why));
        pthread_mutex_lock(&iso->lock);
        --iso->live;
        pthread_cond_signal(&iso->freed);
        pthread_mutex_unlock(&iso->lock);
        res->report.duration_ns = fn_now_ns() - started;
        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&kills, 1);
            snprintf(res->error, sizeof(res->error),
                     "the isolated C function passed its deadline: its process was "
                     "killed");
            return -ETIMEDOUT;
        }
        atomic_fetch_add(&crashes, 1);
        snprintf(res->error, sizeof(res->error), "the isolated C function's process %s", why);
        return -EPIPE;
    }
    reader r = {frame, frame + len, 0};
    int call_rc = (int)get_u32(&r);
    int status = (int)get_u32(&r);
    res->report.duration_ns = get_u64(&r);
    res->report.peak_bytes = get_u64(&r);
    bfg_str error = get_str(&r);
    uint32_t nheaders = get_u32(&r);
    for (uint32_t i = 0; i < nheaders && !r.bad; ++i) {
        bfg_str name = get_str(&r), value = get_str(&r);
        if (!r.bad && name.ptr != NULL &&
            fn_response_add_header(res, name.ptr, name.len, value.ptr != NULL ? value.ptr : "", value.len) != 0)
            r.bad = 1; /* checked again here: the worker is not trusted */
    }
    bfg_str body = get_str(&r);
    if (!r.bad && status != 0 && fn_response_set_status(res, status) != 0)
        r.bad = 1;
    if (!r.bad && body.len > 0 && fn_buf_append(&res->body, body.ptr, body.len) != 0)
        r.bad = 1;
    if (!r.bad && call_rc != 0 && error.ptr != NULL) /* before the frame it points into is freed */
        snprintf(res->error, sizeof(res->error), "%.*s", (int)error.len, error.ptr);
    free(frame);
    if (r.bad) {
        give_back(iso, &w, 0);
        snprintf(res->error, sizeof(res->error), "the isolated C function's process sent a malformed answer");
        return -EPIPE;
    }
    give_back(iso, &w, 1);
    return call_rc;
}
