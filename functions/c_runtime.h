/* c_runtime: C functions loaded from shared objects through the data-only ABI of bffgate/function.h. */
#ifndef FN_C_RUNTIME_H
#define FN_C_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "fn.h"

/*
 * Loads the shared object at `path` (dlopen, RTLD_NOW | RTLD_LOCAL), checks that it exports
 * `bfg_abi_version` equal to BFG_ABI_VERSION and the handler `symbol`, and calls its optional
 * bfg_init. Returns 0 with *out set (one reference), or a negative code with err naming the file
 * and the reason (no ABI symbol, another ABI version, missing handler, init failed, dlopen error).
 * The last release calls the optional bfg_fini and dlclose's the object.
 *
 * Invocations run the handler on a thread of fn_pool, so a handler that blocks (or sleeps) holds one
 * pool thread and never an event loop; the gateway answers 504 at the route's deadline and drops the
 * late result. The handler gets a private copy of the event. With `inline_calls`, or without an
 * event loop (call->host NULL), the handler runs on the calling thread instead: fastest, for
 * trusted functions that never block, and not interruptible.
 * dlopen returns the already-open object for a path it has open: loading a changed object under
 * the same path needs a unique path per version (the reload work does that).
 */
int fn_c_load(const char *name, const char *path, const char *symbol, int inline_calls, unsigned nthreads,
              fn_function **out, char *err, size_t cap);

/*
 * Isolated C functions run in worker processes instead: the gateway's own binary in worker mode
 * (fn_c_set_worker_exe, fn_c_worker_main), at most `processes` of them per function, started on demand and
 * kept for the next call. A worker limits its address space to what it has mapped after loading the object
 * plus `memory_mb`, its CPU time to `cpu_s` seconds in all, its descriptors to stdio and its socket, and has no
 * core files; it dies with the gateway.
 * A call that passes the route's deadline gets its worker killed (SIGKILL) and replaced; a worker that crashes,
 * aborts or runs out of memory costs its call -EPIPE (a 502) and is replaced, and the gateway keeps serving.
 * The object is checked at load in a first worker (ABI, handler, bfg_init), so a faulty bfg_init is a config
 * error, not a crash. Calls cost a round trip over a Unix socket and copies of the event and the response.
 */
typedef struct fn_c_isolation {
    unsigned processes; /* 1..64 */
    uint64_t memory_mb; /* address space a worker may add after loading */
    uint64_t cpu_s;     /* CPU seconds a worker may use in all, then it is replaced */
} fn_c_isolation;

int fn_c_load_isolated(const char *name, const char *path, const char *symbol, const fn_c_isolation *iso,
                       unsigned nthreads, fn_function **out, char *err, size_t cap);
/* The executable that serves as a worker (bffgate: /proc/self/exe); until it is set, isolated functions do not
 * load. */
void fn_c_set_worker_exe(const char *path);
/* The worker's main: bffgate calls it when started as "bffgate --c-worker ...". Returns the exit status. */
int fn_c_worker_main(int argc, char **argv);
/* Isolated calls whose worker died, and whose worker was killed at the deadline, since the start. */
void fn_c_isolated_stats(uint64_t *crashed, uint64_t *killed);

#endif
