/* lua_calls: ctx.call, ctx.fetch and ctx.all: the arguments Lua gives, and the result tables it gets. */
#ifndef FN_LUA_CALLS_H
#define FN_LUA_CALLS_H

#include <lua.h>
#include <stddef.h>

#include "fn.h"

/*
 *   ctx.call(name [, input [, {timeout_ms = n}]])      another function of the config; input is its JSON body
 *   ctx.fetch(upstream, {method, path, query, headers, body, timeout_ms})   an upstream of the config
 *   ctx.all({ {call = name, input = ..., timeout_ms = ...}, {fetch = upstream, path = ..., ...}, ... })
 * ctx.call and ctx.fetch return one result table, ctx.all a list of them (in the same order), all calls
 * of a ctx.all running at once: {ok = boolean, status = integer, body = <decoded JSON or text>,
 * error = string}. A fetch is ok when a response came with a status below 400 (body is there for any
 * status); a call is ok when the function returned a result.
 *
 * A path is sent as given (it must start with '/' and hold only URL path characters: encode values with
 * ctx.encode); query values are percent-encoded here. Bad arguments raise Lua errors at the call.
 */
typedef struct fn_lua_batch {
    fn_subcall calls[FN_SUBCALLS_MAX];
    fn_subcall_result results[FN_SUBCALLS_MAX];
    size_t n;
    int list; /* ctx.all: the results go back as a list */
} fn_lua_batch;

/* Parse the arguments of ctx.call / ctx.fetch / ctx.all on L's stack into *b (zeroed first). Raise Lua errors. */
int fn_lua_batch_parse_call(lua_State *L, fn_lua_batch *b);
int fn_lua_batch_parse_fetch(lua_State *L, fn_lua_batch *b);
int fn_lua_batch_parse_all(lua_State *L, fn_lua_batch *b);

/* lua_CFunction for lua_pcall with the batch as a light userdata argument: pushes the result table(s). */
int fn_lua_batch_push_results(lua_State *L);

/* Frees what the batch's calls and results hold (NULL-safe); leaves it empty. */
void fn_lua_batch_clear(fn_lua_batch *b);

/* ctx.encode(s): s percent-encoded for a path segment or query value. */
int fn_lua_ctx_encode(lua_State *L);

#endif
