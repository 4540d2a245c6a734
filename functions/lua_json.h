/* lua_json: conversion between JSON (jansson values and JSON text) and Lua values, and the `json` library for
 * functions. */
#ifndef FN_LUA_JSON_H
#define FN_LUA_JSON_H

#include <jansson.h>
#include <lua.h>

#include "fn_buf.h"

/*
 * Mapping (both directions):
 *   JSON object  <-> Lua table with string keys (decoded objects get no metatable)
 *   JSON array   <-> Lua sequence 1..n. Decoded arrays get the shared "array" metatable so that an empty
 *                    array encodes back as [] (json.array(t) sets the same metatable on any table).
 *   JSON string  <-> Lua string (encoding requires valid UTF-8)
 *   JSON integer <-> Lua integer; JSON real <-> Lua float (NaN and infinities cannot be encoded)
 *   true/false   <-> boolean
 *   null         <-> json.null, a light userdata sentinel (pointer value NULL)
 * Encoding a table: the array metatable -> array; otherwise a table whose keys are exactly 1..n (n > 0)
 * -> array; a table whose keys are all strings -> object (empty table -> {}); anything else (mixed keys,
 * float keys, sparse arrays) is an error. Object keys are written in Lua's traversal order.
 * Functions, userdata other than json.null, and threads cannot be encoded.
 *
 * Errors never raise a Lua error from the C-facing functions: they return a negative code and write a
 * message (with a JSON path such as `$.items[3].name`) into err. Nesting deeper than FN_JSON_MAX_DEPTH
 * is an error in both directions (which also catches cyclic tables).
 *
 * Threading: these functions touch only the given lua_State; call them on the thread that owns it.
 * The Lua stack must have room: the push functions call lua_checkstack themselves.
 */

#define FN_JSON_MAX_DEPTH 128
#define FN_JSON_MAX_DEPTH_TEXT "128"

/* Registers the global table `json` (encode, decode, null, array) and the array metatable in L.
 * json.encode(v) -> string, or raises an error; json.decode(s) -> value, or raises an error. */
void fn_lua_json_open(lua_State *L);

/* Pushes the Lua value for `value`. Returns 0, or -1 (nothing pushed; err says why: too deep / no memory).
 * Must run inside a protected call or on a state whose allocator cannot fail. */
int fn_lua_push_json(lua_State *L, const json_t *value, char *err, size_t cap);

/* Appends the JSON text of the Lua value at stack index idx to out (compact, no spaces).
 * Returns 0, or -1 with err set; on error out may hold a partial text (the caller discards it). */
int fn_lua_encode_json(lua_State *L, int idx, fn_buf *out, char *err, size_t cap);

/* Sets how much JSON text an encode may produce for the state it runs in (the invocation's remaining
 * memory budget; SIZE_MAX for no limit), and, divided by 32, how much text json.decode accepts: both
 * allocate outside the Lua allocator. Set once, before any state exists. */
void fn_lua_json_set_budget(size_t (*budget)(lua_State *L));
/* Sets a function the encoder calls, before reading it, on every table that has a metatable other than
 * json.array's: it may add fields to the table at idx with raw sets (lazily built tables, such as a Lua
 * function's event, are encoded whole). It must not run Lua code and must not raise: it returns 0,
 * -ENOMEM (the state's memory limit: the encode fails with FN_JSON_OVER_BUDGET), or another negative
 * errno (the encode fails). Set once, before any state exists. */
void fn_lua_json_set_expand(int (*expand)(lua_State *L, int idx));
/* Error messages of the encoder start with this when the budget was the reason. */
#define FN_JSON_OVER_BUDGET "the JSON text would pass the memory limit"

/*
 * Parses JSON text (any value at the top; "\u0000" only with allow_nul; integers must fit int64). With L,
 * pushes the Lua value (the mapping above) built straight from the text; without, only checks it.
 * Returns 0, or -1 with err "line L, column C: reason" (nothing pushed). With L, memory errors raise: run
 * it in protected mode.
 */
int fn_json_parse(lua_State *L, const char *text, size_t len, int allow_nul, char *err, size_t cap);
/* Pushes the shared array metatable (decoded arrays carry it). May raise (out of memory). */
void fn_lua_push_array_metatable(lua_State *L);

/* Pushes json.null. */
void fn_lua_push_null(lua_State *L);
/* Nonzero when the value at idx is json.null. */
int fn_lua_is_null(lua_State *L, int idx);

#endif
