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
 * Invocations run the handler in-process on the calling worker thread; a handler that blocks
 * blocks that thread's event loop (a later version runs C functions off the loop).
 * dlopen returns the already-open object for a path it has open: loading a changed object under
 * the same path needs a unique path per version (the reload work does that).
 */
int fn_c_load(const char *name, const char *path, const char *symbol, unsigned nthreads, fn_function **out, char *err,
              size_t cap);

#endif
