/* bffgate/function.h: the data-only ABI between bffgate and C functions (the only public header). */
#ifndef BFFGATE_FUNCTION_H
#define BFFGATE_FUNCTION_H

/*
 * A C function is a shared object that exports:
 *
 *   const unsigned bfg_abi_version = BFG_ABI_VERSION;          required; checked at load
 *   int <symbol>(const bfg_event *event, bfg_response *res);    the handler; symbol named in the config
 *   int bfg_init(void);                                         optional; once per load, non-zero refuses the load
 *   void bfg_fini(void);                                        optional; once before unload
 *
 * Nothing of the gateway crosses this boundary: the event is plain read-only data, and the
 * response is filled through the inline accessors below, which call the gateway through a
 * table of function pointers carried by the response itself. This keeps a C function runnable
 * in-process or in an isolated worker process alike.
 *
 * Contract for handlers:
 *  - The event and every string it points to are valid only during the call. Strings are
 *    length-delimited and NOT NUL-terminated; they may contain any bytes.
 *  - Return 0 on success. Any other value makes the gateway answer 500 with a JSON error; what
 *    the handler set on the response is then discarded.
 *  - A handler may be called on several threads at once: keep no unsynchronised global state.
 *  - The accessors copy what they are given; they return 0, or -1 when the value is refused
 *    (a header with CR, LF or NUL, a status outside 200..599, out of memory). A refused header
 *    turns the response into a 500.
 *  - Without bfg_response_set_status the status is 200.
 *  - Memory: bfg_alloc / bfg_free hand out memory counted against the route's memory_mb; bfg_alloc
 *    returns NULL when the invocation would pass it. Whatever the handler did not bfg_free is freed
 *    when it returns, so nothing it allocates this way outlives the call. The limit does NOT cover
 *    memory taken with malloc, new or mmap directly, by the handler or by libraries it calls, nor
 *    static data and the thread's stack: use bfg_alloc for what a request makes you allocate.
 *  - Handlers run on a pool thread by default (they may block: the gateway answers 504 at the
 *    route's deadline and drops a late result); functions configured "inline": true run on the
 *    event loop thread and must never block.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BFG_ABI_VERSION 1u

typedef struct bfg_str {
    const char *ptr;
    size_t len;
} bfg_str;

typedef struct bfg_pair {
    bfg_str name;
    bfg_str value;
} bfg_pair;

typedef struct bfg_event {
    unsigned abi_version; /* BFG_ABI_VERSION of the gateway that built the event */
    bfg_str method;
    bfg_str path;     /* the request path without the query string */
    bfg_str route;    /* the route pattern that matched, e.g. "/products/{id}" */
    bfg_str frontend; /* the frontend name, e.g. "web" */
    bfg_str request_id;
    bfg_str body;
    const bfg_pair *params; /* path parameters, percent-decoded */
    size_t nparams;
    const bfg_pair *query; /* query parameters in order, percent-decoded; a name may repeat */
    size_t nquery;
    const bfg_pair *headers; /* request headers, names lower-case; a name may repeat */
    size_t nheaders;
    /* The verified JWT claims as compact JSON object text ({"sub":"alice",...}), or {NULL, 0} when the
     * route needs no token. Appended in bffgate 0.2: fields are only ever added at the end. */
    bfg_str claims;
} bfg_event;

typedef struct bfg_response_ops {
    int (*set_status)(void *impl, int status);
    int (*add_header)(void *impl, const char *name, size_t name_len, const char *value, size_t value_len);
    int (*append_body)(void *impl, const char *data, size_t len);
    void *(*alloc)(void *impl, size_t size);
    void (*free)(void *impl, void *ptr);
} bfg_response_ops;

typedef struct bfg_response {
    const bfg_response_ops *ops;
    void *impl;
} bfg_response;

static inline int bfg_response_set_status(bfg_response *res, int status)
{
    return res->ops->set_status(res->impl, status);
}

static inline int bfg_response_add_header(bfg_response *res, const char *name, size_t name_len, const char *value,
                                          size_t value_len)
{
    return res->ops->add_header(res->impl, name, name_len, value, value_len);
}

static inline int bfg_response_append_body(bfg_response *res, const char *data, size_t len)
{
    return res->ops->append_body(res->impl, data, len);
}

/* Memory for this invocation, counted against the route's memory_mb (see above). Aligned for any type. */
static inline void *bfg_alloc(bfg_response *res, size_t size)
{
    return res->ops->alloc(res->impl, size);
}

static inline void bfg_free(bfg_response *res, void *ptr)
{
    res->ops->free(res->impl, ptr);
}

/* Returns the first value of a pair named `name` (exact, case-sensitive bytes), or {NULL, 0}. */
static inline bfg_str bfg_find(const bfg_pair *pairs, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; ++i) {
        if (pairs[i].name.len == name_len) {
            size_t j = 0;
            while (j < name_len && pairs[i].name.ptr[j] == name[j])
                ++j;
            if (j == name_len)
                return pairs[i].value;
        }
    }
    bfg_str none = {NULL, 0};
    return none;
}

typedef int (*bfg_handler_fn)(const bfg_event *event, bfg_response *res);
typedef int (*bfg_init_fn)(void);
typedef void (*bfg_fini_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
