/* fn: the one invoke interface behind which every function runtime (Lua, C in-process) sits. */
#ifndef FN_FN_H
#define FN_FN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <bffgate/function.h>

#include "fn_buf.h"

/*
 * A function is loaded once per config version (its code compiled or its object opened, then
 * validated) and is immutable afterwards, except for per-thread pools of warm runtime state that
 * only the owning worker thread touches. It is reference counted so that a later config version
 * can keep an unchanged function warm; the last fn_function_release frees it (states closed,
 * objects unloaded). Reference counting is atomic: any thread may acquire or release.
 *
 * Invocations run on a worker thread's event loop and never block it: Lua code runs as a coroutine
 * that may suspend (ctx.sleep, later upstream calls) and C functions run on the fn_pool threads,
 * unless they are declared inline. fn_start is asynchronous in the manner of libuv: when it
 * returns FN_PENDING the done callback runs later, exactly once, on the calling thread, unless
 * fn_task_cancel is called first; when it returns anything else the callback is never called.
 */

typedef enum fn_kind { FN_KIND_LUA, FN_KIND_C } fn_kind;

/* Per-invocation limits, resolved from the route (later issues enforce more of them). */
typedef struct fn_limits {
    uint64_t timeout_ms;   /* deadline of the whole invocation, measured from its start */
    uint64_t memory_bytes; /* what one Lua invocation may allocate on top of its warm state */
} fn_limits;

typedef struct fn_header {
    char *name; /* malloc'd, lower-case, NUL-terminated; the block holds the value too */
    size_t name_len;
    char *value; /* NUL-terminated, inside name's block (freed with it) */
    size_t value_len;
} fn_header;

/* How an invocation went, for the per-invocation report (filled by the runtimes). */
typedef struct fn_report {
    uint64_t duration_ns; /* time spent in the function (Lua: across its slices; C: the call) */
    size_t peak_bytes;    /* the most it held at once: Lua above its warm state, C through bfg_alloc */
    int cold;             /* a state was created for it */
} fn_report;

/*
 * What a function answered. Owned by the caller: fn_response_init before the call,
 * fn_response_release after. On a failed invocation the response content is undefined and
 * `error` holds the reason for the log (never for the client).
 */
typedef struct fn_response {
    int status;
    fn_header *headers;
    size_t nheaders;
    size_t headers_cap;
    fn_buf body;
    int has_content_type;
    fn_report report;
    char error[512];
    /* Set by an invocation that completes (done or a synchronous return) while work it started still runs
     * elsewhere (a C call it abandoned on a pool thread): call->released then follows, once that work has
     * ended, as after a cancel that returned 1. */
    int pending_release;
} fn_response;

void fn_response_init(fn_response *res);
void fn_response_release(fn_response *res);
/* Validates (RFC 9110 token name; value without CR, LF or NUL) and adds a copy of a header.
 * Returns 0, -EINVAL (error set) or -ENOMEM. */
int fn_response_add_header(fn_response *res, const char *name, size_t name_len, const char *value, size_t value_len);
/* Hop-by-hop headers (RFC 9110 7.6.1, and content-length / transfer-encoding, which the sender frames itself).
 * `name` is lower-case. */
int fn_header_is_hop_by_hop(const char *name, size_t len);
/* Whether a call may set this (lower-case) header on an upstream request: not hop-by-hop, and not one the
 * gateway sets itself (host, content-type, expect, x-request-id, traceparent). */
int fn_header_settable_upstream(const char *name, size_t len);
/* Returns 0 for 200..599, else -EINVAL with error set. */
int fn_response_set_status(fn_response *res, int status);

/*
 * What a worker thread offers the runtimes for asynchronous work. All three are called on the
 * worker's own thread except post, which any thread may call. A NULL host means "no event loop":
 * everything must then complete synchronously (unit tests, --check).
 */
typedef struct fn_host fn_host;
typedef void (*fn_host_cb)(void *data);
struct fn_call;

/* A call a function makes through its host (Lua: ctx.call, ctx.fetch, ctx.all). Strings are owned by
 * the caller and stay valid until the batch's done callback runs or the batch is cancelled. */
typedef enum fn_subcall_kind { FN_SUBCALL_FUNCTION, FN_SUBCALL_UPSTREAM } fn_subcall_kind;
typedef struct fn_subcall {
    fn_subcall_kind kind;
    char *target;        /* a function or upstream name of the config */
    char *method;        /* upstream: NULL for GET */
    char *path;          /* upstream: path and encoded query, "/" when NULL */
    char **headers;      /* upstream: name, value, name, value... */
    size_t nheaders;     /* pairs */
    char *body;          /* JSON text: a function's input, an upstream's body; NULL: none */
    uint64_t timeout_ms; /* 0: the upstream's own (functions: what is left) */
} fn_subcall;

typedef struct fn_subcall_result {
    int ok;        /* a function's result, or an upstream's response (any status) */
    int status;    /* the HTTP status (functions: theirs); 0 without a response */
    json_t *value; /* ok: the decoded body (the caller decrefs) */
    char error[160];
} fn_subcall_result;

#define FN_SUBCALLS_MAX 32 /* per batch */
#define FN_SUBCALL_DEPTH_MAX 4
typedef struct fn_host_ops {
    /* Starts a one-shot timer; returns a handle for timer_stop, or NULL on ENOMEM. */
    void *(*timer_start)(fn_host *host, uint64_t ms, fn_host_cb cb, void *data);
    /* Stops a timer that has not fired; its callback will not run. */
    void (*timer_stop)(fn_host *host, void *timer);
    /* Runs cb(data) on the host's thread soon. Any thread. Returns 0, or -ENOMEM. */
    int (*post)(fn_host *host, fn_host_cb cb, void *data);
    /* Starts n calls at once for the invocation `call`; each is bounded by the invocation's deadline.
     * Fills results[i] and then calls done(data) once, never from within this function. Returns a
     * handle for subcalls_cancel, or NULL on out of memory. NULL op: no calls from functions here. */
    void *(*subcalls_start)(fn_host *host, const struct fn_call *call, const fn_subcall *calls,
                            fn_subcall_result *results, size_t n, fn_host_cb done, void *data);
    /* Stops a batch whose done has not run; done will not run, results are left as they are. */
    void (*subcalls_cancel)(fn_host *host, void *batch);
} fn_host_ops;
struct fn_host {
    const fn_host_ops *ops;
};

/* One invocation's input. The event's strings stay valid until the invocation completes or is
 * cancelled (runtimes that finish later on another thread copy what they need). */
typedef struct fn_call {
    const bfg_event *event;
    const json_t *json;   /* the decoded JSON body, or NULL */
    int body_is_json;     /* without json: event->body is JSON text; runtimes that decode it answer -EBADMSG
                             (error: where it is invalid) when it is not JSON after all */
    const json_t *claims; /* the verified JWT claims (an object), or NULL */
    unsigned thread;      /* the calling worker thread's index, < the function's nthreads */
    fn_limits limits;
    uint64_t start_ns; /* CLOCK_MONOTONIC at the start of the route: the deadline counts from here */
    fn_host *host;     /* the worker's event loop, or NULL */
    const void *scope; /* the host's: what names in subcalls resolve against (the request's snapshot) */
    unsigned depth;    /* 0 for a route's invocation; +1 for each call made from a call */
    /* When a cancelled invocation goes on running elsewhere (a C call on a pool thread), called with the
     * done callback's data on this thread once it has really ended (see fn_task_cancel). May be NULL. */
    fn_host_cb released;
} fn_call;

#define FN_PENDING 1

/* An invocation in flight. Runtime-private beyond `cancel`. */
typedef struct fn_task fn_task;
struct fn_task {
    int (*cancel)(fn_task *task);
};

/* Called once when a pending invocation ends: rc is 0 (res filled) or negative (res->error set). */
typedef void (*fn_done_cb)(void *data, int rc);

/* Stops a pending invocation: its done callback will not run, and the response passed to fn_start is no
 * longer touched after this returns. Returns 0 when everything it held is released now (a Lua state is
 * discarded), or 1 when the work goes on elsewhere until it ends (a C function already running on a pool
 * thread; its result is dropped): call->released then runs on this thread when it has ended, so the caller
 * can keep counting it against the route's concurrency meanwhile. */
static inline int fn_task_cancel(fn_task *task)
{
    return task->cancel(task);
}

typedef struct fn_function fn_function;

typedef struct fn_runtime_ops {
    /* See fn_start. */
    int (*start)(fn_function *fn, const fn_call *call, fn_response *res, fn_done_cb done, void *data, fn_task **task);
    void (*destroy)(fn_function *fn);
} fn_runtime_ops;

struct fn_function {
    const fn_runtime_ops *ops;
    fn_kind kind;
    char *name;        /* config name */
    char *path;        /* resolved source or object path */
    char version[17];  /* first 64 bits of the content hash, hex */
    int64_t loaded_at; /* unix seconds */
    unsigned nthreads; /* worker threads that may invoke it */
    atomic_uint refs;
    void *impl; /* runtime-private */
};

/*
 * Starts an invocation. Returns 0 (res filled) or a negative code (res->error set) when it completed
 * synchronously; or FN_PENDING with *task set, and then done(data, rc) runs later on this thread
 * unless fn_task_cancel(*task) comes first. Error codes: -ETIMEDOUT (deadline), -ENOMEM (memory
 * limit), -EINVAL (the function failed), -ECANCELED never (cancel suppresses the callback).
 */
static inline int fn_start(fn_function *fn, const fn_call *call, fn_response *res, fn_done_cb done, void *data,
                           fn_task **task)
{
    *task = NULL;
    return fn->ops->start(fn, call, res, done, data, task);
}

/* Synchronous invocation for callers without an event loop: call->host must be NULL. */
static inline int fn_invoke(fn_function *fn, const fn_call *call, fn_response *res)
{
    fn_task *task;
    return fn_start(fn, call, res, NULL, NULL, &task);
}

fn_function *fn_function_acquire(fn_function *fn);
/* NULL-safe; clears *fn. The last release destroys the function. */
void fn_function_release(fn_function **fn);

/* Shared by the runtimes: allocates the common part. Returns NULL on ENOMEM. */
fn_function *fn__function_new(const fn_runtime_ops *ops, fn_kind kind, const char *name, const char *path,
                              const void *content, size_t content_len, unsigned nthreads);
/* Frees the common part (not impl). */
void fn__function_free(fn_function *fn);

/* The version a function loaded from `path` would get (its content hash), without loading it.
 * Returns 0, or -errno. */
int fn_file_version(const char *path, char version[17]);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t fn_now_ns(void);

/* Reads a whole file. Returns 0 with *out malloc'd (NUL-terminated) and *len set, or -errno. */
int fn_read_file(const char *path, char **out, size_t *len);

#endif
