/* c_isolated: the worker processes behind isolated C functions (internal to the C runtime; see c_runtime.h). */
#ifndef FN_C_ISOLATED_H
#define FN_C_ISOLATED_H

#include <stddef.h>
#include <stdint.h>

#include "../include/bffgate/function.h"
#include "c_runtime.h"
#include "fn.h"

typedef struct c_iso c_iso;

/* Starts one worker on `object` (a file the workers load; unlinked by fn__c_iso_free) and waits for it to
 * report that the object loaded (ABI, handler, bfg_init). NULL with err on failure. */
c_iso *fn__c_iso_new(const char *name, const char *object, const char *symbol, const fn_c_isolation *opt, char *err,
                     size_t cap);
/* Kills the idle workers. No call may be running. */
void fn__c_iso_free(c_iso *iso);
/* Runs one call in a worker (blocking: a pool thread). Returns the handler's outcome (0, or -EINVAL etc. with
 * res->error), -ETIMEDOUT when the deadline passed (the worker was killed), or -EPIPE when the worker died. */
int fn__c_iso_call(c_iso *iso, const bfg_event *ev, size_t memory_limit, uint64_t deadline_ns, fn_response *res);
/* The in-process call the workers make (c_runtime.c). */
int fn__c_invoke(bfg_handler_fn handler, const bfg_event *event, size_t memory_limit, fn_response *res);

#endif
