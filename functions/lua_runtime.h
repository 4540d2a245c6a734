/* lua_runtime: Lua 5.4 functions in sandboxed, warm, per-thread states, each invocation a coroutine. */
#ifndef FN_LUA_RUNTIME_H
#define FN_LUA_RUNTIME_H

#include <stddef.h>

#include "fn.h"

/*
 * A Lua function file is a text chunk that returns a module table with `handler(event, ctx)`.
 *
 * Sandbox (per state; each function has its own states, so nothing is shared between functions):
 *   globals kept: assert error ipairs next pairs pcall rawequal rawget rawlen rawset select
 *                 setmetatable getmetatable tonumber tostring type xpcall _G _VERSION
 *   libraries:    string (without string.dump), table, math, utf8, coroutine,
 *                 os with only time, clock and date, json (see lua_json.h)
 *   replaced:     print -> a log record at level info with the request id;
 *                 string.find/match/gmatch/gsub -> lua_pattern.c (a work budget that checks the deadline);
 *                 setmetatable refuses __gc; coroutine.close nesting is capped; large table.sort
 *                 gets a Lua comparator; string.rep of empty strings, table.move ranges and
 *                 table.insert/remove on a lying __len are bounded (C loops the hook cannot reach)
 *   ctx:          requestId, functionName, functionVersion, getRemainingTimeMs, log, sleep
 *   absent:       io, debug, package, require, dofile, loadfile, load, collectgarbage
 * Source is always loaded in text mode: a precompiled (bytecode) file is refused at load.
 *
 * Warm states: per worker thread, a pool of states in which the chunk already ran and the handler
 * is referenced; an invocation takes one, runs the handler in a new coroutine and gives it back.
 * Only when the pool is empty does an invocation create a state (a cold start). A state whose
 * invocation failed by timeout or memory is closed rather than returned.
 *
 * Limits: a state may hold call->limits.memory_bytes on top of its size right after its module
 * loaded (0 = unlimited; JSON text built outside the Lua allocator counts too), and an invocation
 * is interrupted by an instruction-count hook once call->limits.timeout_ms have passed since
 * call->start_ns (0 = no deadline). With an event loop (call->host) the same hook yields every
 * 2 ms so other requests on the thread are served; ctx.sleep suspends on a host timer.
 *
 * Threading: fn_lua_load runs on any thread (typically the config loader) before the function is
 * published; invocations for thread t touch only pool t.
 */

/*
 * Reads and validates the function at `path`: refuses bytecode, compiles the chunk, runs it in a
 * sandboxed state under a 1 s load deadline, and checks it returns a table with a `handler`
 * function. Then pre-warms `prewarm` states for each of `nthreads` threads.
 * Returns 0 with *out set (one reference), or a negative code with err naming the file and, for
 * Lua errors, the line ("functions/hello.lua:3: unexpected symbol near 'x'").
 */
int fn_lua_load(const char *name, const char *path, unsigned nthreads, unsigned prewarm, fn_function **out, char *err,
                size_t cap);

/* Statistics of one thread's pool (for tests and status pages). */
typedef struct fn_lua_pool_stats {
    size_t idle;        /* states ready in the pool */
    size_t cold_starts; /* states created by invocations */
    size_t discarded;   /* states closed after a timeout, memory error or yield */
    size_t idle_bytes;  /* memory held by the idle states */
} fn_lua_pool_stats;

/* Any thread may read the stats (relaxed atomics); idle is exact only on the pool's own thread. */

void fn_lua_pool_stats_get(const fn_function *fn, unsigned thread, fn_lua_pool_stats *out);

#endif
