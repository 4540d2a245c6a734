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
 * fn_invoke runs on a worker thread's event loop. It never blocks on I/O (Lua code runs as a
 * coroutine; a C function runs in-process and must itself not block in this version).
 */

typedef enum fn_kind { FN_KIND_LUA, FN_KIND_C } fn_kind;

/* Per-invocation limits, resolved from the route (later issues enforce more of them). */
typedef struct fn_limits {
    uint64_t timeout_ms;   /* deadline of the whole invocation, measured from its start */
    uint64_t memory_bytes; /* what one Lua invocation may allocate on top of its warm state */
} fn_limits;

typedef struct fn_header {
    char *name; /* malloc'd, lower-case, NUL-terminated */
    size_t name_len;
    char *value; /* malloc'd, NUL-terminated */
    size_t value_len;
} fn_header;

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
    char error[512];
} fn_response;

void fn_response_init(fn_response *res);
void fn_response_release(fn_response *res);
/* Validates (RFC 9110 token name; value without CR, LF or NUL) and adds a copy of a header.
 * Returns 0, -EINVAL (error set) or -ENOMEM. */
int fn_response_add_header(fn_response *res, const char *name, size_t name_len, const char *value, size_t value_len);
/* Returns 0 for 100..599, else -EINVAL with error set. */
int fn_response_set_status(fn_response *res, int status);

/* One invocation's input. The event's strings stay valid for the whole call. */
typedef struct fn_call {
    const bfg_event *event;
    const json_t *json; /* the decoded JSON body, or NULL */
    unsigned thread;    /* the calling worker thread's index, < the function's nthreads */
    fn_limits limits;
    uint64_t start_ns; /* CLOCK_MONOTONIC at the start of the invocation */
} fn_call;

typedef struct fn_function fn_function;

typedef struct fn_runtime_ops {
    /* Returns 0 with res filled, or a negative code with res->error set. */
    int (*invoke)(fn_function *fn, const fn_call *call, fn_response *res);
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

/* Returns 0 and fills `call`'s output in res, or a negative code with res->error set. */
static inline int fn_invoke(fn_function *fn, const fn_call *call, fn_response *res)
{
    return fn->ops->invoke(fn, call, res);
}

fn_function *fn_function_acquire(fn_function *fn);
/* NULL-safe; clears *fn. The last release destroys the function. */
void fn_function_release(fn_function **fn);

/* Shared by the runtimes: allocates the common part. Returns NULL on ENOMEM. */
fn_function *fn__function_new(const fn_runtime_ops *ops, fn_kind kind, const char *name, const char *path,
                              const void *content, size_t content_len, unsigned nthreads);
/* Frees the common part (not impl). */
void fn__function_free(fn_function *fn);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t fn_now_ns(void);

/* Reads a whole file. Returns 0 with *out malloc'd (NUL-terminated) and *len set, or -errno. */
int fn_read_file(const char *path, char **out, size_t *len);

#endif
