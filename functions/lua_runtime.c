/* lua_runtime: sandboxed Lua 5.4 states, warm pools per thread, invocations as coroutines. */
#include "lua_runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fn_log.h"
#include "lua_calls.h"
#include "lua_json.h"
#include "lua_pattern.h"

#define POOL_MAX_IDLE 16
#define HOOK_INSTRUCTIONS 1000
#define LOAD_DEADLINE_NS 1000000000ULL
#define SLICE_NS 2000000ULL
#define MAX_CLOSE_DEPTH 100
#define SORT_HOOKED_ABOVE 1024
#define MAX_MOVE_RANGE (1 << 22) /* more elements than any memory_mb lets a table hold */
#define MAX_LEN_LIE 1024
/* After closing a state that held this much, give freed memory back to the system. */
#define TRIM_AFTER_BYTES (1u << 20)

typedef struct lua_invocation lua_invocation;

/* One Lua state and its allocation accounting. The allocator's ud is the warm state itself. */
#define SMALL_STEP 16
#define SMALL_MAX 256
#define SMALL_CLASSES (SMALL_MAX / SMALL_STEP)
#define SMALL_KEEP_BYTES (64 * 1024)

typedef struct small_block {
    struct small_block *next;
} small_block;

typedef struct lua_warm {
    lua_State *L;
    small_block *small[SMALL_CLASSES]; /* free small blocks by size class (see warm_alloc) */
    size_t small_bytes;
    size_t used;
    size_t peak;         /* the most `used` reached since the invocation started */
    size_t load_bytes;   /* `used` right after the module loaded */
    size_t pooled_bytes; /* `used` when it went into the pool (what pool->idle_bytes counts for it) */
    size_t limit;        /* 0 = unlimited */
    int handler_ref;
    int log_ref;
    int remaining_ref;
    int sleep_ref;
    int call_ref, fetch_ref, all_ref, encode_ref;
    int event_mt_ref, ctx_ref; /* see make_prototypes */
    int event_slot_ref;        /* registry slot: the running invocation's event table (false between) */
    int co_slot_ref;           /* registry slot: the coroutine the last invocation ran on (reused) */
    int close_depth;
    lua_invocation *current;
} lua_warm;

/* Written only by the owning worker thread; the counters are relaxed atomics because a metrics scrape
 * reads them from another thread. */
typedef struct lua_pool {
    lua_warm *idle[POOL_MAX_IDLE];
    size_t nidle;
    atomic_size_t cold_starts;
    atomic_size_t discarded;
    atomic_size_t idle_bytes; /* memory held by the idle states */
    char pad[64];
} lua_pool;

static inline void pool_add(atomic_size_t *c, size_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static inline void pool_sub(atomic_size_t *c, size_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - by, memory_order_relaxed);
}

typedef struct lua_impl {
    char *source;
    size_t source_len;
    char chunkname[512];
    lua_pool *pools; /* nthreads entries */
} lua_impl;

/* One invocation. On the stack for the load-time run of the chunk; on the heap for requests, since a
 * request's invocation may suspend (ctx.sleep) and resume from a timer. */
struct lua_invocation {
    fn_task task;
    const fn_function *fn;
    const fn_call *call; /* valid until the invocation completes or is cancelled (fn.h) */
    fn_response *res;
    uint64_t deadline_ns; /* 0 = none */
    int timed_out;
    lua_pool *pool;
    lua_warm *w;
    lua_State *co;         /* the handler's coroutine, kept alive on the state's stack */
    uint64_t slice_end_ns; /* when the running slice should yield (0: never, no event loop) */
    int preempted;         /* the hook yielded at the end of a slice */
    uint64_t sleep_ms;     /* set by ctx.sleep before it yields */
    int sleeping;
    void *timer;         /* the host timer of a pending ctx.sleep */
    fn_lua_batch *batch; /* ctx.call/fetch/all: the calls being made (allocated on first use) */
    int calling;         /* set by ctx.call/fetch/all before they yield */
    int bad_body;        /* the request's JSON body turned out invalid while building the event */
    unsigned event_done; /* event fields built or assigned (bit per EV_*): never built (again) after */
    void *batch_handle;  /* the host's handle while the calls run */
    fn_done_cb done;
    void *data;
    size_t base_bytes; /* the state's size when the invocation started */
    uint64_t run_ns;   /* time spent running, across slices and sleeps excluded */
    int cold;
};

/*
 * Small blocks (what an invocation mostly makes: tables, strings, closures of up to 256 bytes) are kept on
 * per-state free lists by size class instead of going back to malloc, so the next invocation's tables reuse
 * them. A small block is always allocated at its class's full size, so it can be reused for any request of
 * that class. The lists are bounded (SMALL_KEEP_BYTES per state) and freed with the state. The memory limit
 * still counts requested sizes, as before.
 */
static size_t small_class(size_t size)
{
    return size <= SMALL_MAX ? (size + SMALL_STEP - 1) / SMALL_STEP - 1 : SIZE_MAX;
}

static void *small_get(lua_warm *w, size_t cls)
{
    small_block *b = w->small[cls];
    if (b != NULL) {
        w->small[cls] = b->next;
        w->small_bytes -= (cls + 1) * SMALL_STEP;
        return b;
    }
    return malloc((cls + 1) * SMALL_STEP);
}

static void small_put(lua_warm *w, void *ptr, size_t cls)
{
    if (w->small_bytes + (cls + 1) * SMALL_STEP > SMALL_KEEP_BYTES) {
        free(ptr);
        return;
    }
    small_block *b = ptr;
    b->next = w->small[cls];
    w->small[cls] = b;
    w->small_bytes += (cls + 1) * SMALL_STEP;
}

static void small_release(lua_warm *w)
{
    for (size_t c = 0; c < SMALL_CLASSES; ++c) {
        while (w->small[c] != NULL) {
            small_block *b = w->small[c];
            w->small[c] = b->next;
            free(b);
        }
    }
    w->small_bytes = 0;
}

static void *warm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_warm *w = ud;
    size_t old = ptr != NULL ? osize : 0;
    size_t ocls = ptr != NULL ? small_class(osize) : SIZE_MAX;
    if (nsize == 0) {
        if (ocls != SIZE_MAX)
            small_put(w, ptr, ocls);
        else
            free(ptr);
        w->used -= old;
        return NULL;
    }
    if (nsize > old && w->limit != 0 && w->used + (nsize - old) > w->limit)
        return NULL;
    size_t ncls = small_class(nsize);
    void *p;
    if (ptr != NULL && ocls == ncls && ncls != SIZE_MAX) {
        p = ptr; /* the block already has its class's full size */
    } else if (ncls != SIZE_MAX) {
        p = small_get(w, ncls);
        if (p == NULL)
            return NULL;
        if (ptr != NULL) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            if (ocls != SIZE_MAX)
                small_put(w, ptr, ocls);
            else
                free(ptr);
        }
    } else if (ocls != SIZE_MAX) { /* small to large */
        p = malloc(nsize);
        if (p == NULL)
            return NULL;
        memcpy(p, ptr, old);
        small_put(w, ptr, ocls);
    } else {
        p = realloc(ptr, nsize);
        if (p == NULL)
            return NULL;
    }
    w->used = w->used - old + nsize;
    if (w->used > w->peak)
        w->peak = w->used;
    return p;
}

static lua_warm *warm_of(lua_State *L)
{
    return *(lua_warm **)lua_getextraspace(L);
}

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_warm *w = warm_of(L);
    lua_invocation *inv = w->current;
    if (inv == NULL)
        return;
    uint64_t now = fn_now_ns();
    if (inv->deadline_ns != 0 && (inv->timed_out || now >= inv->deadline_ns)) {
        inv->timed_out = 1;
        /* From now on fire on every instruction, so a pcall that catches the error gains nothing. */
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "timeout: the function ran past its deadline");
    }
    /* Time slicing: a long computation hands the event loop back every SLICE_NS, so other requests on
     * this thread keep being served. Only the handler's own coroutine yields, and only where Lua can
     * (not across a C call such as a sort comparator or a metamethod). */
    if (inv->slice_end_ns != 0 && now >= inv->slice_end_ns && L == inv->co && lua_isyieldable(L)) {
        inv->preempted = 1;
        lua_yield(L, 0);
    }
}

/* What the running invocation may still allocate (JSON text is built outside the Lua allocator). */
static size_t json_budget(lua_State *L)
{
    lua_warm *w = warm_of(L);
    if (w->limit == 0)
        return SIZE_MAX;
    return w->limit > w->used ? w->limit - w->used : 0;
}

/* Called by the pattern functions every few thousand steps: C code never runs the count hook. */
static void pattern_check(lua_State *L)
{
    lua_invocation *inv = warm_of(L)->current;
    if (inv == NULL || inv->deadline_ns == 0)
        return;
    if (inv->timed_out || fn_now_ns() >= inv->deadline_ns) {
        inv->timed_out = 1;
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "timeout: the function ran past its deadline (in a pattern match)");
    }
}

/* Writes a function log record: level, message and optional fields (a table encoded as JSON). */
static void log_from_lua(lua_State *L, fn_log_level level, const char *msg, size_t msg_len, int fields_idx)
{
    lua_warm *w = warm_of(L);
    lua_invocation *inv = w->current;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, level);
    if (inv != NULL) {
        const bfg_event *ev = inv->call->event;
        fn_log_field_str(&buf, "requestId", ev->request_id.ptr, ev->request_id.len);
        fn_log_field_str(&buf, "function", inv->fn->name, strlen(inv->fn->name));
        fn_log_field_str(&buf, "version", inv->fn->version, strlen(inv->fn->version));
    }
    fn_log_field_str(&buf, "msg", msg, msg_len);
    if (fields_idx != 0) {
        fn_buf fields = FN_BUF_INIT;
        char err[128];
        if (fn_lua_encode_json(L, fields_idx, &fields, err, sizeof(err)) == 0 && fields.len > 0 &&
            fields.data[0] == '{')
            fn_log_field_raw(&buf, "fields", fields.data, fields.len);
        fn_buf_release(&fields);
    }
    fn_log_write(&buf);
}

static int l_print(lua_State *L)
{
    if (!fn_log_enabled(FN_LOG_INFO))
        return 0;
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; ++i) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
        (void)s;
    }
    luaL_pushresult(&b);
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    log_from_lua(L, FN_LOG_INFO, msg, len, 0);
    return 0;
}

static int l_ctx_log(lua_State *L)
{
    size_t level_len, msg_len;
    const char *level_name = luaL_checklstring(L, 1, &level_len);
    const char *msg = luaL_optlstring(L, 2, "", &msg_len);
    fn_log_level level;
    if (fn_log_level_parse(level_name, level_len, &level) != 0)
        return luaL_argerror(L, 1, "level must be debug, info, warn or error");
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    if (fn_log_enabled(level))
        log_from_lua(L, level, msg, msg_len, lua_istable(L, 3) ? 3 : 0);
    return 0;
}

static int l_ctx_remaining(lua_State *L)
{
    lua_invocation *inv = warm_of(L)->current;
    if (inv == NULL || inv->deadline_ns == 0) {
        lua_pushinteger(L, 0);
        return 1;
    }
    uint64_t now = fn_now_ns();
    lua_pushinteger(L, now >= inv->deadline_ns ? 0 : (lua_Integer)((inv->deadline_ns - now) / 1000000));
    return 1;
}

/* The wrappers below check their arguments, then call the library's original (upvalue 1) with every
 * argument they were given, returning all its results. */
static int call_original(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable without __gc: Lua runs finalizers with hooks off, so a looping __gc would escape the
 * deadline (and could run during lua_close). The original setmetatable is upvalue 1. */
static int l_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: metatables with __gc are not allowed in bffgate functions");
        lua_pop(L, 1);
    }
    return call_original(L);
}

/* ctx.sleep(ms): suspends the handler without blocking the event loop. */
static int l_ctx_sleep(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    lua_invocation *inv = warm_of(L)->current;
    luaL_argcheck(L, ms >= 0 && ms <= 3600000, 1, "must be 0..3600000 milliseconds");
    if (inv == NULL || inv->call == NULL || inv->call->host == NULL)
        return luaL_error(L, "ctx.sleep needs an event loop (not available at load time)");
    if (L != inv->co || !lua_isyieldable(L))
        return luaL_error(L, "ctx.sleep cannot be called from inside a coroutine or a C call (a sort comparator, "
                             "a metamethod)");
    inv->sleep_ms = (uint64_t)ms;
    inv->sleeping = 1;
    return lua_yield(L, 0);
}

/* ctx.call, ctx.fetch, ctx.all: parse the calls, then suspend until the host has made them all. */
static int suspend_for_calls(lua_State *L, int (*parse)(lua_State *L, fn_lua_batch *b), const char *what)
{
    lua_invocation *inv = warm_of(L)->current;
    if (inv == NULL || inv->call == NULL || inv->call->host == NULL || inv->call->host->ops->subcalls_start == NULL)
        return luaL_error(L, "%s needs the gateway (not available at load time or in bffgate invoke)", what);
    if (L != inv->co || !lua_isyieldable(L))
        return luaL_error(L,
                          "%s cannot be called from inside a coroutine or a C call (a sort comparator, a "
                          "metamethod)",
                          what);
    if (inv->call->depth >= FN_SUBCALL_DEPTH_MAX)
        return luaL_error(L, "%s: calls nest at most %d deep", what, FN_SUBCALL_DEPTH_MAX);
    if (inv->batch == NULL && (inv->batch = calloc(1, sizeof(*inv->batch))) == NULL)
        return luaL_error(L, "not enough memory");
    fn_lua_batch_clear(inv->batch);
    parse(L, inv->batch);
    inv->calling = 1;
    return lua_yield(L, 0);
}

static int l_ctx_call(lua_State *L)
{
    return suspend_for_calls(L, fn_lua_batch_parse_call, "ctx.call");
}

static int l_ctx_fetch(lua_State *L)
{
    return suspend_for_calls(L, fn_lua_batch_parse_fetch, "ctx.fetch");
}

static int l_ctx_all(lua_State *L)
{
    return suspend_for_calls(L, fn_lua_batch_parse_all, "ctx.all");
}

/* coroutine.close with a nesting bound: Lua 5.4.4 recurses on the C stack without a limit when a
 * __close handler closes another coroutine, and 100,000 such links overflow it. */
static int l_coroutine_close(lua_State *L)
{
    lua_warm *w = warm_of(L);
    if (w->close_depth >= MAX_CLOSE_DEPTH)
        return luaL_error(L, "coroutine.close: nested too deeply (more than %d)", MAX_CLOSE_DEPTH);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    ++w->close_depth;
    int rc = lua_pcall(L, n, LUA_MULTRET, 0);
    --w->close_depth;
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* table.sort without a comparator compares in C, where the count hook never runs: for large tables
 * it gets a Lua comparator (kept as upvalue 2), so the deadline reaches into the sort. */
static int l_table_sort(lua_State *L)
{
    if (lua_isnoneornil(L, 2) && lua_type(L, 1) == LUA_TTABLE && lua_rawlen(L, 1) > SORT_HOOKED_ABOVE) {
        lua_settop(L, 1);
        lua_pushvalue(L, lua_upvalueindex(2));
    }
    return call_original(L);
}

/* Library calls whose loops run in C (no hook) with a count the caller chooses, not bounded by memory:
 * string.rep of empty strings, table.move over huge ranges, table.insert/remove on a table whose __len
 * lies. Each is refused or short-cut before it starts. The originals are upvalue 1. */
static int l_string_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (l == 0 && lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    return call_original(L);
}

static int l_table_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    if (e >= f && (lua_Unsigned)e - (lua_Unsigned)f >= MAX_MOVE_RANGE)
        return luaL_error(L, "table.move: a range of more than %d elements", MAX_MOVE_RANGE);
    return call_original(L);
}

static int l_table_shift(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_Integer len = luaL_len(L, 1);
        if (len > (lua_Integer)lua_rawlen(L, 1) + MAX_LEN_LIE)
            return luaL_error(L, "table.insert/remove: __len reports %I elements, far more than the table holds", len);
    }
    return call_original(L);
}

static void wrap_field(lua_State *L, const char *lib, const char *name, lua_CFunction wrapper)
{
    lua_getglobal(L, lib);
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, wrapper, 1);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static void set_global_nil(lua_State *L, const char *name)
{
    lua_pushnil(L);
    lua_setglobal(L, name);
}

/* Opens the allowed libraries and removes everything else. Runs protected (it may raise on OOM). */
static void make_prototypes(lua_State *L, lua_warm *w, const fn_function *fn);

/* The JSON library's hooks: how much text an encode may produce, and how an event is encoded whole. */
static pthread_once_t json_hooks_once = PTHREAD_ONCE_INIT;
static void set_json_hooks(void);
static int expand_event(lua_State *L, int idx);

static int open_sandbox(lua_State *L)
{
    const fn_function *fn = lua_touserdata(L, 1); /* taken before the libraries reshape the stack */
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    lua_settop(L, 0);

    /* os: only time, clock and date. */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 3);
    static const char *const os_keep[] = {"time", "clock", "date"};
    for (size_t i = 0; i < 3; ++i) {
        lua_getfield(L, 1, os_keep[i]);
        lua_setfield(L, 2, os_keep[i]);
    }
    lua_setglobal(L, "os");
    lua_settop(L, 0);

    static const char *const removed[] = {"dofile", "loadfile", "load", "collectgarbage", "require"};
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); ++i)
        set_global_nil(L, removed[i]);
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    fn_lua_pattern_open(L, pattern_check);
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    wrap_field(L, LUA_STRLIBNAME, "rep", l_string_rep);
    wrap_field(L, LUA_TABLIBNAME, "move", l_table_move);
    wrap_field(L, LUA_TABLIBNAME, "insert", l_table_shift);
    wrap_field(L, LUA_TABLIBNAME, "remove", l_table_shift);
    lua_getglobal(L, LUA_TABLIBNAME);
    lua_getfield(L, -1, "sort");
    if (luaL_loadstring(L, "local a, b = ... return a < b") != LUA_OK)
        return lua_error(L);
    lua_pushcclosure(L, l_table_sort, 2);
    lua_setfield(L, -2, "sort");
    lua_pop(L, 1);
    lua_getglobal(L, LUA_COLIBNAME);
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, l_coroutine_close, 1);
    lua_setfield(L, -2, "close");
    lua_pop(L, 1);
    fn_lua_json_open(L);
    pthread_once(&json_hooks_once, set_json_hooks); /* before the first state uses them, from any thread */

    lua_warm *w = warm_of(L);
    lua_pushcfunction(L, l_ctx_log);
    w->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, l_ctx_remaining);
    w->remaining_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, l_ctx_sleep);
    w->sleep_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, l_ctx_call);
    w->call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, l_ctx_fetch);
    w->fetch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, l_ctx_all);
    w->all_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, fn_lua_ctx_encode);
    w->encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    make_prototypes(L, w, fn);
    return 0;
}

static void warm_close(lua_warm *w)
{
    if (w == NULL)
        return;
    if (w->L != NULL)
        lua_close(w->L);
    small_release(w);
    free(w);
}

/* Creates a sandboxed state, runs the chunk and references its handler. Returns NULL with err set. */
static lua_warm *warm_new(const fn_function *fn, const lua_impl *impl, char *err, size_t cap)
{
    lua_warm *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, cap, "%s: out of memory", fn->path);
        return NULL;
    }
    w->L = lua_newstate(warm_alloc, w);
    if (w->L == NULL) {
        snprintf(err, cap, "%s: out of memory", fn->path);
        free(w);
        return NULL;
    }
    lua_State *L = w->L;
    *(lua_warm **)lua_getextraspace(L) = w;

    lua_pushcfunction(L, open_sandbox);
    lua_pushlightuserdata(L, (void *)fn);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        snprintf(err, cap, "%s: cannot create a Lua state: %s", fn->path, lua_tostring(L, -1));
        goto Error;
    }
    if (luaL_loadbufferx(L, impl->source, impl->source_len, impl->chunkname, "t") != LUA_OK) {
        snprintf(err, cap, "%s", lua_tostring(L, -1));
        goto Error;
    }
    /* The chunk's top level runs under a deadline too: a module that loops forever is refused. */
    lua_invocation load = {.fn = fn, .deadline_ns = fn_now_ns() + LOAD_DEADLINE_NS};
    fn_call load_call = {0};
    bfg_event load_event = {0};
    load_call.event = &load_event;
    load.call = &load_call;
    w->current = &load;
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    int rc = lua_pcall(L, 0, 1, 0);
    lua_sethook(L, NULL, 0, 0);
    w->current = NULL;
    if (rc != LUA_OK || load.timed_out) {
        if (load.timed_out)
            snprintf(err, cap, "%s: the module's top level ran past the %llu s load deadline", fn->path,
                     (unsigned long long)(LOAD_DEADLINE_NS / 1000000000ULL));
        else
            snprintf(err, cap, "%s", lua_tostring(L, -1));
        goto Error;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, cap, "%s: the chunk must return a module table with handler(event, ctx), got %s", fn->path,
                 luaL_typename(L, -1));
        goto Error;
    }
    lua_pushliteral(L, "handler"); /* raw: the deadline hook is off, so no metamethod may run */
    lua_rawget(L, -2);
    if (!lua_isfunction(L, -1)) {
        snprintf(err, cap, "%s: the module's handler must be a function, got %s", fn->path, luaL_typename(L, -1));
        goto Error;
    }
    w->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    /* Generational collection: an invocation's garbage (event, ctx, result tables) dies young, and the
     * module's data is old; minor collections touch only the young. */
    lua_gc(L, LUA_GCGEN, 0, 0);
    w->load_bytes = w->used;
    return w;
Error:
    warm_close(w);
    return NULL;
}

/* Pushes pairs as a table name -> value; a repeated name keeps the last value (headers: joined with ", "). */
static void push_pairs(lua_State *L, const bfg_pair *pairs, size_t n, int join)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; ++i) {
        if (join) {
            lua_pushlstring(L, pairs[i].name.ptr, pairs[i].name.len);
            if (lua_rawget(L, -2) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, pairs[i].value.ptr, pairs[i].value.len);
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, pairs[i].value.ptr, pairs[i].value.len);
            }
        } else {
            lua_pushlstring(L, pairs[i].value.ptr, pairs[i].value.len);
        }
        lua_pushlstring(L, pairs[i].name.ptr, pairs[i].name.len);
        lua_insert(L, -2);
        lua_rawset(L, -3);
    }
}

/* Pushes name -> {values...} for every name. */
static void push_multi(lua_State *L, const bfg_pair *pairs, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; ++i) {
        lua_pushlstring(L, pairs[i].name.ptr, pairs[i].name.len);
        if (lua_rawget(L, -2) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_createtable(L, 1, 0);
            lua_pushlstring(L, pairs[i].name.ptr, pairs[i].name.len);
            lua_pushvalue(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushlstring(L, pairs[i].value.ptr, pairs[i].value.len);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
    }
}

/*
 * event is a view of the request built as the handler reads it: every field (method, path, ..., claims)
 * is pushed on first read by __index and then stored in the event, so later reads are plain and a handler
 * that reads nothing pays nothing. __pairs and the JSON encoder (see expand_event) fill in all fields
 * first, so iterating or encoding an event shows all of them. Only for the invocation the event belongs to
 * (the registry's event slot): an event kept by the module and read in a later invocation gets nil for
 * the fields it had not read in time (their strings are gone), never the later request's data.
 */
enum {
    EV_METHOD,
    EV_PATH,
    EV_ROUTE,
    EV_FRONTEND,
    EV_REQUEST_ID,
    EV_BODY,
    EV_PATH_PARAMETERS,
    EV_QUERY,
    EV_MULTI_VALUE_QUERY,
    EV_HEADERS,
    EV_CLAIMS,
    EV_NFIELDS
};
static const char *const event_fields[EV_NFIELDS] = {"method",          "path",    "route",          "frontend",
                                                     "requestId",       "body",    "pathParameters", "query",
                                                     "multiValueQuery", "headers", "claims"};

static void push_str(lua_State *L, bfg_str s)
{
    lua_pushlstring(L, s.ptr != NULL ? s.ptr : "", s.len);
}

/* Pushes the value of event field `field` of inv's request; returns 0 with nothing pushed when the
 * request has no such value (claims without a token). Raises on a memory error. */
static int push_event_field(lua_State *L, const lua_invocation *inv, int field)
{
    const bfg_event *ev = inv->call->event;
    char err[256];
    switch (field) {
    case EV_METHOD:
        push_str(L, ev->method);
        return 1;
    case EV_PATH:
        push_str(L, ev->path);
        return 1;
    case EV_ROUTE:
        push_str(L, ev->route);
        return 1;
    case EV_FRONTEND:
        push_str(L, ev->frontend);
        return 1;
    case EV_REQUEST_ID:
        push_str(L, ev->request_id);
        return 1;
    case EV_BODY:
        push_str(L, ev->body);
        return 1;
    case EV_PATH_PARAMETERS:
        push_pairs(L, ev->params, ev->nparams, 0);
        return 1;
    case EV_QUERY:
        push_pairs(L, ev->query, ev->nquery, 0);
        return 1;
    case EV_MULTI_VALUE_QUERY:
        push_multi(L, ev->query, ev->nquery);
        return 1;
    case EV_HEADERS:
        push_pairs(L, ev->headers, ev->nheaders, 1);
        return 1;
    case EV_CLAIMS:
        if (inv->call->claims == NULL)
            return 0;
        if (fn_lua_push_json(L, inv->call->claims, err, sizeof(err)) != 0)
            return luaL_error(L, "cannot convert the token's claims: %s", err);
        return 1;
    default:
        return 0;
    }
}

/* The running invocation when the table at idx is its event, else NULL. */
static lua_invocation *event_owner(lua_State *L, int idx)
{
    lua_warm *w = warm_of(L);
    if (w->current == NULL)
        return NULL;
    idx = lua_absindex(L, idx);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->event_slot_ref);
    int same = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return same ? w->current : NULL;
}

/* Stores every field the event at idx has not had yet (raw: no metamethod runs). A field the handler built,
 * assigned or deleted is left as it is. */
static void fill_event(lua_State *L, int idx, lua_invocation *inv)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "filling the event");
    for (int field = 0; field < EV_NFIELDS; ++field) {
        if (inv->event_done & (1u << field))
            continue;
        inv->event_done |= 1u << field;
        lua_pushstring(L, event_fields[field]);
        if (lua_rawget(L, idx) == LUA_TNIL && push_event_field(L, inv, field)) {
            lua_pushstring(L, event_fields[field]);
            lua_insert(L, -2);
            lua_rawset(L, idx);
        }
        lua_pop(L, 1);
    }
}

/* The EV_* of the string key at idx, or EV_NFIELDS. */
static int event_field_of(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        return EV_NFIELDS;
    const char *key = lua_tostring(L, idx);
    int field = 0;
    while (field < EV_NFIELDS && strcmp(key, event_fields[field]) != 0)
        field++;
    return field;
}

static int l_event_index(lua_State *L)
{
    int field = event_field_of(L, 2);
    if (field == EV_NFIELDS)
        return 0;
    lua_invocation *inv = event_owner(L, 1);
    if (inv == NULL || (inv->event_done & (1u << field)))
        return 0; /* not this invocation's event, or built before and deleted since */
    inv->event_done |= 1u << field;
    if (!push_event_field(L, inv, field))
        return 0;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* An assignment to a field not built yet: it stands (event.body = nil deletes the body for good). */
static int l_event_newindex(lua_State *L)
{
    int field = event_field_of(L, 2);
    if (field != EV_NFIELDS) {
        lua_invocation *inv = event_owner(L, 1);
        if (inv != NULL)
            inv->event_done |= 1u << field;
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* next without the global of that name (a handler may replace it). */
static int l_event_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1) != 0)
        return 2;
    lua_pushnil(L);
    return 1;
}

static int l_event_pairs(lua_State *L)
{
    lua_invocation *inv = event_owner(L, 1);
    if (inv != NULL)
        fill_event(L, 1, inv);
    lua_pushcfunction(L, l_event_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int fill_event_protected(lua_State *L)
{
    fill_event(L, 1, lua_touserdata(L, 2));
    return 0;
}

/* The encoder's hook for tables with a metatable: an event is encoded with all its fields. The encoder's
 * callers hold malloc'd buffers, so nothing may raise through it: the fields are built under lua_pcall
 * (event_owner, lua_pushcfunction, lua_pushvalue and lua_pushlightuserdata do not allocate). */
static int expand_event(lua_State *L, int idx)
{
    lua_invocation *inv = event_owner(L, idx);
    if (inv == NULL)
        return 0;
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 3))
        return -ENOMEM;
    lua_pushcfunction(L, fill_event_protected);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, inv);
    int rc = lua_pcall(L, 2, 0, 0);
    if (rc != LUA_OK) {
        lua_pop(L, 1);
        return rc == LUA_ERRMEM ? -ENOMEM : -EINVAL;
    }
    return 0;
}

static void set_json_hooks(void)
{
    fn_lua_json_set_budget(json_budget);
    fn_lua_json_set_expand(expand_event);
}

/* ctx.requestId: the running invocation's (ctx is shared by the invocations of a state). */
static int l_ctx_index(lua_State *L)
{
    lua_warm *w = warm_of(L);
    if (w->current == NULL || lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "requestId") != 0)
        return 0;
    push_str(L, w->current->call->event->request_id);
    return 1;
}

static int l_ctx_newindex(lua_State *L)
{
    return luaL_error(L, "ctx is read-only: keep per-request values in local variables");
}

/* Per warm state, once: the event metatable, and the one ctx every invocation of the state gets. ctx
 * itself stays empty (finish() checks: a handler's rawset would reach later requests): its metatable's
 * __index is a hidden prototype with the names and functions, whose own metatable's __index gives the
 * running invocation's requestId; __newindex raises. Both metatables hide themselves from getmetatable. */
static void make_prototypes(lua_State *L, lua_warm *w, const fn_function *fn)
{
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, l_event_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_event_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_event_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    w->event_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
    w->event_slot_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
    w->co_slot_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_createtable(L, 0, 10);
    lua_pushstring(L, fn->name);
    lua_setfield(L, -2, "functionName");
    lua_pushstring(L, fn->version);
    lua_setfield(L, -2, "functionVersion");
    static const struct {
        const char *name;
        size_t offset;
    } fns[] = {{"getRemainingTimeMs", offsetof(lua_warm, remaining_ref)},
               {"log", offsetof(lua_warm, log_ref)},
               {"sleep", offsetof(lua_warm, sleep_ref)},
               {"call", offsetof(lua_warm, call_ref)},
               {"fetch", offsetof(lua_warm, fetch_ref)},
               {"all", offsetof(lua_warm, all_ref)},
               {"encode", offsetof(lua_warm, encode_ref)}};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); ++i) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, *(const int *)((const char *)w + fns[i].offset));
        lua_setfield(L, -2, fns[i].name);
    }
    lua_createtable(L, 0, 2); /* the prototype's metatable */
    lua_pushcfunction(L, l_ctx_index);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);

    lua_createtable(L, 0, 0); /* ctx */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_ctx_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    w->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
}

/* Protected: builds (event, ctx) on the stack. Upvalue-free: the invocation is in the warm state. Only
 * event.json is built here: an invalid JSON body must be refused (400) before the handler runs. */
static int build_arguments(lua_State *L)
{
    lua_warm *w = warm_of(L);
    lua_invocation *inv = w->current;
    const bfg_event *ev = inv->call->event;
    char err[256];

    int has_json = inv->call->json != NULL || inv->call->body_is_json;
    lua_createtable(L, 0, has_json);
    if (inv->call->json != NULL) {
        if (fn_lua_push_json(L, inv->call->json, err, sizeof(err)) != 0)
            return luaL_error(L, "cannot convert the request JSON: %s", err);
        lua_setfield(L, -2, "json");
    } else if (inv->call->body_is_json) { /* straight from the text: no intermediate tree */
        if (fn_json_parse(L, ev->body.ptr, ev->body.len, 0, err, sizeof(err)) != 0) {
            inv->bad_body = 1; /* the client's mistake, not the function's */
            return luaL_error(L, "invalid JSON body: %s", err);
        }
        lua_setfield(L, -2, "json");
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, w->event_slot_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->event_mt_ref);
    lua_setmetatable(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    return 2;
}

/* Copies the response table's headers into res. Returns 0, or raises. */
static void collect_headers(lua_State *L, int idx, fn_response *res)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "response headers: names must be strings");
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "response header \"%s\": the value must be a string or a number", lua_tostring(L, -2));
        size_t nlen, vlen;
        const char *name = lua_tolstring(L, -2, &nlen);
        lua_pushvalue(L, -1); /* tolstring converts numbers in place: convert a copy */
        const char *value = lua_tolstring(L, -1, &vlen);
        int rc = fn_response_add_header(res, name, nlen, value, vlen);
        if (rc == -ENOMEM)
            luaL_error(L, "not enough memory");
        if (rc != 0)
            luaL_error(L, "%s", res->error);
        lua_pop(L, 2);
    }
}

static void encode_body(lua_State *L, int idx, fn_response *res)
{
    char err[256];
    if (fn_lua_encode_json(L, idx, &res->body, err, sizeof(err)) != 0)
        luaL_error(L, "cannot encode the response body as JSON: %s", err);
    if (!res->has_content_type && fn_response_add_header(res, "content-type", 12, "application/json", 16) != 0)
        luaL_error(L, "not enough memory");
}

/* Pushes t[key] without metamethods: this conversion runs without the deadline hook, so no Lua code may run. */
static int raw_field(lua_State *L, int idx, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, idx);
}

/* Protected: turns the handler's result (index 1) into res (light userdata at index 2). */
static int collect_response(lua_State *L)
{
    fn_response *res = lua_touserdata(L, 2);
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (fn_buf_append(&res->body, s, len) != 0)
            return luaL_error(L, "not enough memory");
        if (fn_response_add_header(res, "content-type", 12, "text/plain; charset=utf-8", 25) != 0)
            return luaL_error(L, "not enough memory");
        return 0;
    }
    if (t == LUA_TNIL || t == LUA_TNONE) {
        res->status = 204;
        return 0;
    }
    if (t != LUA_TTABLE)
        return luaL_error(L, "the handler must return a table or a string, got %s", luaL_typename(L, 1));
    raw_field(L, 1, "statusCode");
    if (lua_isnil(L, -1)) {
        /* No statusCode: the whole table is the JSON body of a 200. */
        lua_pop(L, 1);
        encode_body(L, 1, res);
        return 0;
    }
    int isnum;
    lua_Integer status = lua_tointegerx(L, -1, &isnum);
    if (!isnum || status < 200 || status > 599)
        return luaL_error(L, "statusCode must be an integer in 200..599");
    res->status = (int)status;
    lua_pop(L, 1);
    raw_field(L, 1, "headers");
    if (lua_istable(L, -1))
        collect_headers(L, lua_gettop(L), res);
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "headers must be a table");
    lua_pop(L, 1);
    raw_field(L, 1, "body");
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (fn_buf_append(&res->body, s, len) != 0)
            return luaL_error(L, "not enough memory");
    } else if (lua_istable(L, -1)) {
        encode_body(L, lua_gettop(L), res);
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "body must be a string or a table, got %s", luaL_typename(L, -1));
    }
    return 0;
}

static void pool_put(lua_pool *pool, lua_warm *w)
{
    if (pool->nidle < POOL_MAX_IDLE) {
        pool->idle[pool->nidle++] = w;
        w->pooled_bytes = w->used;
        pool_add(&pool->idle_bytes, w->pooled_bytes);
    } else {
        warm_close(w);
    }
}

static lua_warm *pool_take(lua_pool *pool)
{
    lua_warm *w = pool->idle[--pool->nidle];
    pool_sub(&pool->idle_bytes, w->pooled_bytes);
    return w;
}

/* Ends an invocation: the state goes back to the pool, or is closed when it broke a limit. Frees inv. */
static int finish(lua_invocation *inv, int rc, int discard)
{
    lua_warm *w = inv->w;
    if (inv->res != NULL) {
        inv->res->report.duration_ns = inv->run_ns;
        inv->res->report.peak_bytes = w->peak > inv->base_bytes ? w->peak - inv->base_bytes : 0;
        inv->res->report.cold = inv->cold;
    }
    lua_settop(w->L, 0);
    /* Forget the event (an existing registry slot: no allocation): a kept one answers nil from now on. */
    lua_pushboolean(w->L, 0);
    lua_rawseti(w->L, LUA_REGISTRYINDEX, w->event_slot_ref);
    /* ctx is shared by the state's invocations and must stay empty: a handler that rawset something in it
     * costs the state (lua_next allocates nothing). */
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
    lua_pushnil(w->L);
    if (lua_next(w->L, -2) != 0)
        discard = 1;
    lua_settop(w->L, 0);
    w->current = NULL;
    w->limit = 0;
    if (inv->batch != NULL) {
        fn_lua_batch_clear(inv->batch);
        free(inv->batch);
    }
    if (discard) {
        size_t held = w->used;
        warm_close(w);
        pool_add(&inv->pool->discarded, 1);
        if (held >= TRIM_AFTER_BYTES)
            malloc_trim(0); /* so a memory bomb does not leave the process's RSS raised */
    } else {
        pool_put(inv->pool, w);
    }
    free(inv);
    return rc;
}

static int fail(lua_invocation *inv, int rc, int discard, const char *fmt, const char *detail)
{
    snprintf(inv->res->error, sizeof(inv->res->error), fmt, detail);
    return finish(inv, rc, discard);
}

static int timed_out(lua_invocation *inv)
{
    snprintf(inv->res->error, sizeof(inv->res->error), "timeout after %llu ms",
             (unsigned long long)inv->call->limits.timeout_ms);
    return finish(inv, -ETIMEDOUT, 1);
}

static void on_wake(void *data);
static void on_calls_done(void *data);

/* Runs the handler's coroutine until it returns, fails or suspends. Returns FN_PENDING, or the final
 * rc after finish() (inv is then freed). */
static int step(lua_invocation *inv, int nargs)
{
    lua_State *L = inv->w->L, *co = inv->co;
    int nres = 0;
    uint64_t started = fn_now_ns();
    if (inv->call->host != NULL)
        inv->slice_end_ns = started + SLICE_NS;
    int status = lua_resume(co, L, nargs, &nres);
    inv->run_ns += fn_now_ns() - started;
    /* A timeout caught by coroutine.resume in tail position ends the handler without another instruction
     * to interrupt: the handler returns normally, but the invocation still timed out. */
    if (inv->timed_out)
        return timed_out(inv);
    if (status == LUA_YIELD) {
        lua_pop(co, nres);
        fn_host *host = inv->call->host;
        if (inv->calling) {
            inv->batch_handle = host->ops->subcalls_start(host, inv->call, inv->batch->calls, inv->batch->results,
                                                          inv->batch->n, on_calls_done, inv);
            if (inv->batch_handle == NULL)
                return fail(inv, -ENOMEM, 1, "%s", "out of memory");
            return FN_PENDING;
        }
        if (!inv->sleeping && !inv->preempted)
            return fail(inv, -EINVAL, 1, "%s", "the handler yielded outside an asynchronous call");
        /* A preempted handler resumes after 1 ms, not 0: h2o 2.2 runs a 0 ms timer linked from a timer
         * callback in the same pass, without polling, so other requests would never get their turn. */
        inv->timer = host->ops->timer_start(host, inv->preempted ? 1 : inv->sleep_ms, on_wake, inv);
        if (inv->timer == NULL)
            return fail(inv, -ENOMEM, 1, "%s", "out of memory");
        return FN_PENDING;
    }
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM) {
            char limit[32];
            snprintf(limit, sizeof(limit), "%llu", (unsigned long long)inv->call->limits.memory_bytes);
            return fail(inv, -ENOMEM, 1, "memory limit of %s bytes reached", limit);
        }
        const char *msg = lua_tostring(co, -1);
        /* json.encode stopped at the memory limit, or a memory error re-raised as a plain error (by
         * coroutine.close, pcall in C...): still a memory-limit stop, and the state goes. */
        if (msg != NULL && (strstr(msg, FN_JSON_OVER_BUDGET) != NULL || strcmp(msg, "not enough memory") == 0))
            return fail(inv, -ENOMEM, 1, "%s", msg);
        return fail(inv, -EINVAL, 0, "%s", msg != NULL ? msg : "error object is not a string");
    }
    /* Keep only the first result, then convert it under protection. */
    if (nres == 0)
        lua_pushnil(co);
    else if (nres > 1)
        lua_pop(co, nres - 1);
    lua_pushcfunction(co, collect_response);
    lua_insert(co, -2);
    lua_pushlightuserdata(co, inv->res);
    lua_sethook(co, NULL, 0, 0);
    int converted = lua_pcall(co, 2, 0, 0);
    if (converted != LUA_OK) {
        const char *msg = lua_tostring(co, -1);
        int memory = converted == LUA_ERRMEM || (msg != NULL && strstr(msg, FN_JSON_OVER_BUDGET) != NULL);
        return fail(inv, memory ? -ENOMEM : -EINVAL, memory, "%s", msg != NULL ? msg : "conversion failed");
    }
    return finish(inv, 0, 0);
}

static void on_wake(void *data)
{
    lua_invocation *inv = data;
    inv->timer = NULL;
    inv->sleeping = 0;
    inv->preempted = 0;
    fn_done_cb done = inv->done;
    void *done_data = inv->data;
    int rc;
    if (inv->deadline_ns != 0 && fn_now_ns() >= inv->deadline_ns)
        rc = timed_out(inv);
    else
        rc = step(inv, 0);
    if (rc != FN_PENDING)
        done(done_data, rc);
}

/* The host has made the calls of ctx.call/fetch/all: their results go back to the handler. */
static void on_calls_done(void *data)
{
    lua_invocation *inv = data;
    inv->batch_handle = NULL;
    inv->calling = 0;
    fn_done_cb done = inv->done;
    void *done_data = inv->data;
    int rc;
    if (inv->deadline_ns != 0 && fn_now_ns() >= inv->deadline_ns) {
        rc = timed_out(inv);
    } else {
        /* Converted on the state's main thread, protected (memory errors), then handed to the coroutine. */
        lua_State *L = inv->w->L;
        lua_pushcfunction(L, fn_lua_batch_push_results);
        lua_pushlightuserdata(L, inv->batch);
        int status = lua_pcall(L, 1, 1, 0);
        fn_lua_batch_clear(inv->batch);
        if (status != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            int memory = status == LUA_ERRMEM || (msg != NULL && strcmp(msg, "not enough memory") == 0);
            rc = fail(inv, memory ? -ENOMEM : -EINVAL, 1, "%s", msg != NULL ? msg : "cannot convert the results");
        } else {
            lua_xmove(L, inv->co, 1);
            rc = step(inv, 1);
        }
    }
    if (rc != FN_PENDING)
        done(done_data, rc);
}

static int lua_cancel(fn_task *task)
{
    lua_invocation *inv = (lua_invocation *)task;
    if (inv->batch_handle != NULL && inv->call->host->ops->subcalls_cancel != NULL)
        inv->call->host->ops->subcalls_cancel(inv->call->host, inv->batch_handle);
    if (inv->timer != NULL)
        inv->call->host->ops->timer_stop(inv->call->host, inv->timer);
    inv->res = NULL; /* cancelled: no report */
    finish(inv, 0, 1);
    return 0;
}

static int lua_start(fn_function *fn, const fn_call *call, fn_response *res, fn_done_cb done, void *data,
                     fn_task **task)
{
    lua_impl *impl = fn->impl;
    lua_pool *pool = &impl->pools[call->thread];
    lua_invocation *inv = calloc(1, sizeof(*inv));
    if (inv == NULL) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        return -ENOMEM;
    }
    lua_warm *w;
    if (pool->nidle > 0) {
        w = pool_take(pool);
    } else {
        w = warm_new(fn, impl, res->error, sizeof(res->error));
        if (w == NULL) {
            free(inv);
            return -ENOMEM;
        }
        pool_add(&pool->cold_starts, 1);
        inv->cold = 1;
    }
    inv->task.cancel = lua_cancel;
    inv->fn = fn;
    inv->call = call;
    inv->res = res;
    inv->pool = pool;
    inv->w = w;
    inv->done = done;
    inv->data = data;
    if (call->limits.timeout_ms != 0)
        inv->deadline_ns = call->start_ns + call->limits.timeout_ms * 1000000ULL;
    w->current = inv;

    lua_State *L = w->L;
    /* The previous invocation's coroutine when it returned normally (an empty, finished thread runs a new
     * function like a fresh one), else a new one. Unprotected but the allocator has no limit yet; a real
     * out-of-memory here ends in Lua's panic. */
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, w->co_slot_ref) == LUA_TTHREAD && lua_status(lua_tothread(L, -1)) == LUA_OK &&
        lua_gettop(lua_tothread(L, -1)) == 0) {
        inv->co = lua_tothread(L, -1);
    } else {
        lua_pop(L, 1);
        inv->co = lua_newthread(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, LUA_REGISTRYINDEX, w->co_slot_ref);
    }
    /* The limit counts from the state's size after its load, not from its size now: a function that keeps
     * data in module variables uses up its own budget and then gets a fresh state, instead of growing. */
    w->limit = call->limits.memory_bytes != 0 ? w->load_bytes + call->limits.memory_bytes : 0;
    inv->base_bytes = w->peak = w->used;
    if (inv->deadline_ns != 0 || call->host != NULL)
        lua_sethook(inv->co, deadline_hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    lua_rawgeti(inv->co, LUA_REGISTRYINDEX, w->handler_ref);
    lua_pushcfunction(inv->co, build_arguments);
    int built = lua_pcall(inv->co, 0, 2, 0);
    if (built != LUA_OK && inv->bad_body)
        return fail(inv, -EBADMSG, 0, "%s", lua_tostring(inv->co, -1)); /* the state is intact */
    if (built != LUA_OK)
        return fail(inv, built == LUA_ERRMEM ? -ENOMEM : -EINVAL, 1, "%s", lua_tostring(inv->co, -1));
    int rc = step(inv, 2);
    if (rc == FN_PENDING)
        *task = &inv->task;
    return rc;
}

static void lua_destroy(fn_function *fn)
{
    lua_impl *impl = fn->impl;
    if (impl != NULL) {
        if (impl->pools != NULL) {
            for (unsigned t = 0; t < fn->nthreads; ++t) {
                for (size_t i = 0; i < impl->pools[t].nidle; ++i)
                    warm_close(impl->pools[t].idle[i]);
            }
            free(impl->pools);
        }
        free(impl->source);
        free(impl);
    }
    fn__function_free(fn);
}

static const fn_runtime_ops lua_ops = {lua_start, lua_destroy};

int fn_lua_load(const char *name, const char *path, unsigned nthreads, unsigned prewarm, fn_function **out, char *err,
                size_t cap)
{
    char *source = NULL;
    size_t len = 0;
    int rc = fn_read_file(path, &source, &len);
    if (rc != 0) {
        snprintf(err, cap, "%s: cannot read the Lua file: %s", path, strerror(-rc));
        return rc;
    }
    if (len > 0 && source[0] == LUA_SIGNATURE[0]) {
        snprintf(err, cap, "%s: precompiled Lua (bytecode) is not accepted: give the source text", path);
        free(source);
        return -EINVAL;
    }
    fn_function *fn = fn__function_new(&lua_ops, FN_KIND_LUA, name, path, source, len, nthreads);
    lua_impl *impl = calloc(1, sizeof(*impl));
    if (fn == NULL || impl == NULL) {
        free(impl);
        fn__function_free(fn);
        free(source);
        snprintf(err, cap, "%s: out of memory", path);
        return -ENOMEM;
    }
    fn->impl = impl;
    impl->source = source;
    impl->source_len = len;
    snprintf(impl->chunkname, sizeof(impl->chunkname), "@%s", path);
    impl->pools = calloc(nthreads > 0 ? nthreads : 1, sizeof(*impl->pools));
    if (impl->pools == NULL) {
        snprintf(err, cap, "%s: out of memory", path);
        rc = -ENOMEM;
        goto Error;
    }
    /* Validate once, then keep the validated state warm for thread 0. */
    lua_warm *first = warm_new(fn, impl, err, cap);
    if (first == NULL) {
        rc = -EINVAL;
        goto Error;
    }
    if (nthreads == 0) {
        warm_close(first);
    } else {
        pool_put(&impl->pools[0], first);
        for (unsigned t = 0; t < nthreads; ++t) {
            for (unsigned i = impl->pools[t].nidle; i < prewarm && i < POOL_MAX_IDLE; ++i) {
                lua_warm *w = warm_new(fn, impl, err, cap);
                if (w == NULL) {
                    rc = -ENOMEM;
                    goto Error;
                }
                pool_put(&impl->pools[t], w);
            }
        }
    }
    *out = fn;
    return 0;
Error:
    lua_destroy(fn);
    return rc;
}

void fn_lua_pool_stats_get(const fn_function *fn, unsigned thread, fn_lua_pool_stats *out)
{
    const lua_impl *impl = fn->impl;
    const lua_pool *pool = &impl->pools[thread];
    out->idle = __atomic_load_n(&pool->nidle, __ATOMIC_RELAXED);
    out->cold_starts = atomic_load_explicit(&pool->cold_starts, memory_order_relaxed);
    out->discarded = atomic_load_explicit(&pool->discarded, memory_order_relaxed);
    out->idle_bytes = atomic_load_explicit(&pool->idle_bytes, memory_order_relaxed);
}
