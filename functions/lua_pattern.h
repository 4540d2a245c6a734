/* lua_pattern: string.find, string.match, string.gmatch and string.gsub with a work budget, for the Lua sandbox. */
#ifndef FN_LUA_PATTERN_H
#define FN_LUA_PATTERN_H

#include <lua.h>

/*
 * Lua's own pattern functions run in C and never reach the debug hook, so a backtracking pattern such as
 * ('a'):rep(3000):find('.-.-.-b') runs for minutes past any instruction-count deadline. The replacements
 * behave exactly like Lua 5.4's (same results, same error messages, same "pattern too complex" depth
 * limit of 200 nested matching calls, at most LUA_MAXCAPTURES captures) but count their work and call
 * a check function at regular intervals, which may stop the match by raising an error.
 *
 * Work: one unit per character test, per matching step (one pattern item tried at one position,
 * including every start position tried by find, match, gmatch and gsub), per set member examined, per
 * character scanned by %b, and per byte compared or copied in bulk (back-references, plain find,
 * gsub's replacement text). Units add up across all calls of the functions installed by one
 * fn_lua_pattern_open (in any coroutine of the state); the check runs each time FN_LUA_PATTERN_CHECK_STEPS
 * units have accumulated, so the work between two checks is bounded whatever the subject, the pattern
 * and the number of calls are. (A single copy of gsub's replacement text or of the pattern scan for
 * specials counts its bytes at once and checks at most once: it is one memchr/memcpy over a string
 * that already fits in memory.)
 *
 * Errors: the functions raise Lua errors exactly where the originals do, plus whatever the check raises.
 * They hold no malloc'd memory (buffers live on the Lua stack), so raising leaks nothing.
 *
 * Threading: everything runs on the thread that owns L, inside the calling Lua function.
 */

/* Units of matching work between two calls of the check function. */
#define FN_LUA_PATTERN_CHECK_STEPS 4096

/* Called every FN_LUA_PATTERN_CHECK_STEPS units of work with the state running the match. It returns to
 * let the match go on, or raises a Lua error (luaL_error) to abandon it; the error propagates out of the
 * string function. It must leave the stack as it found it and must not yield. */
typedef void (*fn_lua_pattern_check)(lua_State *L);

/* Replaces find, match, gmatch and gsub in the global table `string` (which the string library also
 * installs as the __index of the string metatable, so s:find(...) uses them too) with budgeted versions
 * that call `check`; a NULL check means no limit. The string library must already be open; if the global
 * `string` is not a table, nothing is replaced. May raise on allocation failure: call it inside a
 * protected call or on a state whose allocator cannot fail. */
void fn_lua_pattern_open(lua_State *L, fn_lua_pattern_check check);

#endif
