/* c_runtime: C functions loaded from shared objects through the data-only ABI of bffgate/function.h. */
#ifndef FN_C_RUNTIME_H
#define FN_C_RUNTIME_H

#include <stddef.h>

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

#endif
