/* lua_json: Lua values to JSON text (direct, into an fn_buf), jansson values to Lua values, and the `json` library. */
#include "lua_json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

/*
 * Decisions that the header leaves open:
 * - Floats are written with "%.17g" (exact round trip, same text as jansson's default). A float whose text
 *   looks like an integer gets ".0" appended (3.0 -> "3.0", -0.0 -> "-0.0"), so it decodes back as a float
 *   and math.type() survives the round trip.
 * - nil encodes as null (it can only appear at the top level: tables cannot hold nil).
 * - Array indices in error paths are 0-based, as in JSONPath: `$.items[0]` is the Lua value items[1].
 * - json.decode accepts any value at the top level (JSON_DECODE_ANY) and \u0000 inside strings
 *   (JSON_ALLOW_NUL: Lua strings hold NUL bytes). Duplicate object keys: the last one wins (jansson's default).
 * - The array metatable is protected (__metatable = "json.array"): it is shared by every array of a
 *   lua_State that outlives requests, so scripts may test getmetatable(t) == "json.array" but not edit it.
 */

/* Registry key of the shared array metatable; the address is what matters. */
static const char array_metatable_key = 0;

#define ARRAY_METATABLE_NAME "json.array"

/* json.encode keeps its output buffer between calls; a buffer that grew past this is freed after use. */
#define ENCODE_BUFFER_KEEP (64 * 1024)

#define ERROR_PATH_MAX 200

typedef struct path_segment {
    const char *key; /* NULL for an array element */
    size_t key_len;
    size_t index; /* 0-based */
} path_segment;

/* State of one encode or decode walk. path[d] is the step taken inside the container at depth d. */
typedef struct json_walk {
    lua_State *L;
    char *err;
    size_t err_cap;
    fn_buf *out;          /* encode */
    size_t max_len;       /* encode: the most the text may take (the invocation's memory budget) */
    const void *array_mt; /* encode: the array metatable, NULL when never created */
    int array_mt_index;   /* decode: stack index of the array metatable */
    path_segment path[FN_JSON_MAX_DEPTH];
} json_walk;

typedef struct path_text {
    char *out;
    size_t cap;
    size_t len;
    bool cut;
} path_text;

static void path_put(path_text *t, char c)
{
    /* Keep room for "..." and the NUL. */
    if (t->len + 4 < t->cap)
        t->out[t->len++] = c;
    else
        t->cut = true;
}

static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* `$`, then `.name`, `["other key"]` or `[index]` per step; bytes outside printable ASCII appear as \xHH so
 * that the message is safe to log even when the key itself is the invalid UTF-8. */
static void format_path(const json_walk *w, int depth, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    path_text t = {out, cap, 0, false};
    path_put(&t, '$');
    for (int d = 0; d < depth && !t.cut; d++) {
        const path_segment *seg = &w->path[d];
        if (seg->key == NULL) {
            char index[32];
            int n = snprintf(index, sizeof index, "[%zu]", seg->index);
            for (int i = 0; i < n; i++)
                path_put(&t, index[i]);
        } else if (is_identifier(seg->key, seg->key_len)) {
            path_put(&t, '.');
            for (size_t i = 0; i < seg->key_len; i++)
                path_put(&t, seg->key[i]);
        } else {
            path_put(&t, '[');
            path_put(&t, '"');
            for (size_t i = 0; i < seg->key_len; i++) {
                unsigned char c = (unsigned char)seg->key[i];
                if (c == '"' || c == '\\') {
                    path_put(&t, '\\');
                    path_put(&t, (char)c);
                } else if (c < 0x20 || c >= 0x7f) {
                    path_put(&t, '\\');
                    path_put(&t, 'x');
                    path_put(&t, hex[c >> 4]);
                    path_put(&t, hex[c & 0xf]);
                } else {
                    path_put(&t, (char)c);
                }
            }
            path_put(&t, '"');
            path_put(&t, ']');
        }
    }
    if (t.cut) {
        memcpy(out + t.len, "...", 3);
        t.len += 3;
    }
    out[t.len] = '\0';
}

/* Writes "<path to the value at depth>: <reason>" into the caller's err; returns -1. */
__attribute__((format(printf, 3, 4))) static int walk_fail(json_walk *w, int depth, const char *fmt, ...)
{
    if (w->err == NULL || w->err_cap == 0)
        return -1;
    char path[ERROR_PATH_MAX];
    format_path(w, depth, path, sizeof path);
    char reason[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(w->err, w->err_cap, "%s: %s", path, reason);
    return -1;
}

static int fail_no_memory(json_walk *w)
{
    if (w->err != NULL && w->err_cap != 0)
        snprintf(w->err, w->err_cap, "out of memory");
    return -1;
}

/* ---- encoding ---- */

static size_t (*json_budget)(lua_State *L);

void fn_lua_json_set_budget(size_t (*budget)(lua_State *L))
{
    json_budget = budget;
}

static int (*json_expand)(lua_State *L, int idx);

void fn_lua_json_set_expand(int (*expand)(lua_State *L, int idx))
{
    json_expand = expand;
}

static int over_budget(json_walk *w)
{
    if (w->out->len <= w->max_len)
        return 0;
    if (w->err != NULL && w->err_cap != 0)
        snprintf(w->err, w->err_cap, FN_JSON_OVER_BUDGET " (%zu bytes)", w->max_len);
    return 1;
}

static int emit_slow(json_walk *w, const char *s, size_t len)
{
    if (fn_buf_append(w->out, s, len) != 0)
        return fail_no_memory(w);
    return over_budget(w) ? -1 : 0;
}

/* The punctuation and literals: copied in place when the buffer has room and the budget allows. */
static inline int emit(json_walk *w, const char *s, size_t len)
{
    fn_buf *out = w->out;
    if (out->cap - out->len > len && out->len + len <= w->max_len) {
        memcpy(out->data + out->len, s, len);
        out->len += len;
        out->data[out->len] = '\0';
        return 0;
    }
    return emit_slow(w, s, len);
}

static int encode_integer(json_walk *w, lua_Integer value)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char text[24];
    char *end = text + sizeof text;
    char *p = end;
    lua_Unsigned u = value < 0 ? 0u - (lua_Unsigned)value : (lua_Unsigned)value;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100);
        u /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * pair, 2);
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * u, 2);
    } else {
        *--p = (char)('0' + u);
    }
    if (value < 0)
        *--p = '-';
    return emit(w, p, (size_t)(end - p));
}

static int encode_float(json_walk *w, lua_Number value, int depth)
{
    if (isnan(value))
        return walk_fail(w, depth, "cannot encode NaN");
    if (isinf(value))
        return walk_fail(w, depth, "cannot encode %s", value > 0 ? "inf" : "-inf");
    char text[40];
    int len = snprintf(text, sizeof text - 2, "%.17g", (double)value);
    bool looks_integral = true;
    for (int i = 0; i < len; i++) {
        if (text[i] == ',') /* a decimal comma from LC_NUMERIC */
            text[i] = '.';
        if (text[i] == '.' || text[i] == 'e')
            looks_integral = false;
    }
    if (looks_integral) {
        text[len++] = '.';
        text[len++] = '0';
    }
    return emit(w, text, (size_t)len);
}

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 when there is none. p[0] >= 0x80. */
static size_t utf8_sequence_length(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

/* fn_buf_append_json_string, plus UTF-8 validation in the same pass. Returns 0, -ENOMEM, or -EILSEQ with
 * the offset of the first bad byte in *bad_at. */
static int append_json_utf8(fn_buf *out, const char *s, size_t len, size_t *bad_at)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (len > SIZE_MAX - 2 || fn_buf_reserve(out, len + 2) != 0)
        return -ENOMEM;
    out->data[out->len++] = '"'; /* reserved: the quotes and the text when nothing needs escaping */
    out->data[out->len] = '\0';
    size_t run = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t seq = utf8_sequence_length(p + i, len - i);
            if (seq == 0) {
                *bad_at = i;
                return -EILSEQ;
            }
            i += seq;
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        size_t esc_len = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc_len = 6;
            break;
        }
        if (fn_buf_append(out, s + run, i - run) != 0 || fn_buf_append(out, esc, esc_len) != 0)
            return -ENOMEM;
        i++;
        run = i;
    }
    if (fn_buf_reserve(out, len - run + 1) != 0)
        return -ENOMEM;
    memcpy(out->data + out->len, s + run, len - run);
    out->len += len - run;
    out->data[out->len++] = '"';
    out->data[out->len] = '\0';
    return 0;
}

static int encode_string(json_walk *w, const char *s, size_t len, int depth, const char *what)
{
    size_t bad_at = 0;
    /* Checked before the copy too: one huge string referenced many times must not be copied first. */
    if (w->out->len + len > w->max_len) {
        w->out->len += len + 1;
        over_budget(w);
        w->out->len -= len + 1;
        return -1;
    }
    int rc = append_json_utf8(w->out, s, len, &bad_at);
    if (rc == -EILSEQ)
        return walk_fail(w, depth, "%s is not valid UTF-8 (byte %zu)", what, bad_at);
    if (rc != 0)
        return fail_no_memory(w);
    return over_budget(w) ? -1 : 0;
}

static int encode_value(json_walk *w, int idx, int depth);

/* True when the keys of the table at idx are exactly the integers 1..n. */
static bool keys_are_sequence(lua_State *L, int idx, lua_Unsigned n)
{
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        lua_Integer key;
        if (!lua_isinteger(L, -1) || (key = lua_tointeger(L, -1)) < 1 || (lua_Unsigned)key > n) {
            lua_pop(L, 1);
            return false;
        }
        count++;
    }
    return count == n;
}

/* Error path only: says why the table at idx is neither an array nor an object. */
static int fail_table_shape(json_walk *w, int idx, int depth)
{
    lua_State *L = w->L;
    bool has_integer = false;
    bool has_string = false;
    bool has_float = false;
    const char *other = NULL;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        int type = lua_type(L, -1);
        if (type == LUA_TSTRING)
            has_string = true;
        else if (type == LUA_TNUMBER && lua_isinteger(L, -1))
            has_integer = true;
        else if (type == LUA_TNUMBER)
            has_float = true;
        else if (other == NULL)
            other = lua_typename(L, type);
    }
    if (other != NULL)
        return walk_fail(w, depth, "cannot encode a table with a %s key", other);
    if (has_float)
        return walk_fail(w, depth, "cannot encode a table with a non-integer number key");
    if (has_integer && has_string)
        return walk_fail(w, depth, "cannot encode a table that mixes array and object keys");
    if (has_string)
        return walk_fail(w, depth, "cannot encode a json.array table with string keys");
    return walk_fail(w, depth, "cannot encode a sparse array (keys must be exactly 1..n)");
}

static int encode_array(json_walk *w, int idx, lua_Unsigned n, int depth)
{
    lua_State *L = w->L;
    if (emit(w, "[", 1) != 0)
        return -1;
    for (lua_Unsigned i = 1; i <= n; i++) {
        if (i > 1 && emit(w, ",", 1) != 0)
            return -1;
        w->path[depth] = (path_segment){NULL, 0, (size_t)(i - 1)};
        lua_rawgeti(L, idx, (lua_Integer)i);
        int rc = encode_value(w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (rc != 0)
            return -1;
    }
    return emit(w, "]", 1);
}

static int encode_object(json_walk *w, int idx, int depth)
{
    lua_State *L = w->L;
    if (emit(w, "{", 1) != 0)
        return -1;
    bool first = true;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return fail_table_shape(w, idx, depth);
        }
        size_t key_len;
        const char *key = lua_tolstring(L, -2, &key_len);
        w->path[depth] = (path_segment){key, key_len, 0};
        if (!first && emit(w, ",", 1) != 0)
            return -1;
        first = false;
        if (encode_string(w, key, key_len, depth + 1, "object key") != 0 || emit(w, ":", 1) != 0)
            return -1;
        int rc = encode_value(w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (rc != 0)
            return -1;
    }
    return emit(w, "}", 1);
}

static int encode_table(json_walk *w, int idx, int depth)
{
    lua_State *L = w->L;
    if (depth >= FN_JSON_MAX_DEPTH)
        return walk_fail(w, depth, "nesting deeper than %d levels (or a cyclic table)", FN_JSON_MAX_DEPTH);
    if (!lua_checkstack(L, 3))
        return walk_fail(w, depth, "Lua stack overflow");

    bool marked = false;
    if (lua_getmetatable(L, idx)) {
        marked = w->array_mt != NULL && lua_topointer(L, -1) == w->array_mt;
        lua_pop(L, 1);
        int rc = !marked && json_expand != NULL ? json_expand(L, idx) : 0;
        if (rc == -ENOMEM) /* the state's memory limit: reported as the encoder's own budget is */
            return walk_fail(w, depth, FN_JSON_OVER_BUDGET " (building the table's fields)");
        if (rc != 0)
            return walk_fail(w, depth, "cannot build the table's fields");
    }
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n == 0 && !marked)
        return encode_object(w, idx, depth);
    if (!keys_are_sequence(L, idx, n))
        return fail_table_shape(w, idx, depth);
    return encode_array(w, idx, n, depth);
}

static int encode_value(json_walk *w, int idx, int depth)
{
    lua_State *L = w->L;
    int type = lua_type(L, idx);
    switch (type) {
    case LUA_TNIL:
        return emit(w, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? emit(w, "true", 4) : emit(w, "false", 5);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return encode_integer(w, lua_tointeger(L, idx));
        return encode_float(w, lua_tonumber(L, idx), depth);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return encode_string(w, s, len, depth, "string");
    }
    case LUA_TTABLE:
        return encode_table(w, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return emit(w, "null", 4);
        return walk_fail(w, depth, "cannot encode a light userdata other than json.null");
    default:
        return walk_fail(w, depth, "cannot encode a %s", lua_typename(L, type));
    }
}

int fn_lua_encode_json(lua_State *L, int idx, fn_buf *out, char *err, size_t cap)
{
    json_walk w = {.L = L, .err = err, .err_cap = cap, .out = out};
    w.max_len = json_budget != NULL ? json_budget(L) : SIZE_MAX;
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 1))
        return walk_fail(&w, 0, "Lua stack overflow");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_metatable_key);
    w.array_mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    /* Raw access only (lua_next, lua_rawgeti): no metamethod and no Lua code runs while encoding. */
    int rc = encode_value(&w, idx, 0);
    lua_settop(L, top);
    return rc;
}

/* ---- decoding ---- */

/* Pushes the array metatable, creating it on first use. May raise (out of memory). */
void fn_lua_push_array_metatable(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_metatable_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, ARRAY_METATABLE_NAME);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, ARRAY_METATABLE_NAME);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_metatable_key);
}

static int push_value(json_walk *w, json_t *value, int depth);

static int push_object(json_walk *w, json_t *object, int depth)
{
    lua_State *L = w->L;
    size_t size = json_object_size(object);
    lua_createtable(L, 0, size > INT_MAX ? INT_MAX : (int)size);
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        const char *key = json_object_iter_key(it);
        size_t key_len = json_object_iter_key_len(it);
        w->path[depth] = (path_segment){key, key_len, 0};
        lua_pushlstring(L, key, key_len);
        if (push_value(w, json_object_iter_value(it), depth + 1) != 0)
            return -1;
        lua_rawset(L, -3);
    }
    return 0;
}

static int push_array(json_walk *w, json_t *array, int depth)
{
    lua_State *L = w->L;
    size_t size = json_array_size(array);
    lua_createtable(L, size > INT_MAX ? INT_MAX : (int)size, 0);
    lua_pushvalue(L, w->array_mt_index);
    lua_setmetatable(L, -2);
    for (size_t i = 0; i < size; i++) {
        w->path[depth] = (path_segment){NULL, 0, i};
        if (push_value(w, json_array_get(array, i), depth + 1) != 0)
            return -1;
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 0;
}

static int push_value(json_walk *w, json_t *value, int depth)
{
    lua_State *L = w->L;
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= FN_JSON_MAX_DEPTH)
            return walk_fail(w, depth, "nesting deeper than %d levels", FN_JSON_MAX_DEPTH);
        if (!lua_checkstack(L, 3))
            return walk_fail(w, depth, "Lua stack overflow");
        return json_is_object(value) ? push_object(w, value, depth) : push_array(w, value, depth);
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(value), json_string_length(value));
        return 0;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(value));
        return 0;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(value));
        return 0;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return 0;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return 0;
    case JSON_NULL:
        lua_pushlightuserdata(L, NULL);
        return 0;
    }
    return walk_fail(w, depth, "unknown JSON type %d", (int)json_typeof(value));
}

int fn_lua_push_json(lua_State *L, const json_t *value, char *err, size_t cap)
{
    json_walk w = {.L = L, .err = err, .err_cap = cap};
    int top = lua_gettop(L);
    if (value == NULL)
        return walk_fail(&w, 0, "no JSON value");
    if (!lua_checkstack(L, 2))
        return walk_fail(&w, 0, "Lua stack overflow");
    fn_lua_push_array_metatable(L);
    w.array_mt_index = top + 1;
    /* jansson's iteration API takes non-const pointers; the walk only reads. */
    if (push_value(&w, (json_t *)value, 0) != 0) {
        lua_settop(L, top);
        return -1;
    }
    lua_replace(L, top + 1);
    return 0;
}

void fn_lua_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

int fn_lua_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* ---- the `json` library ---- */

static int encode_buffer_gc(lua_State *L)
{
    fn_buf_release(lua_touserdata(L, 1));
    return 0;
}

/* json.encode(v): upvalue 1 is a userdata holding a reusable fn_buf. Since no Lua code runs between
 * resetting it and copying it out, one buffer per `json` table is safe, coroutines included; and the
 * buffer stays owned by the userdata if lua_pushlstring raises. */
static int lib_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    fn_buf *buf = lua_touserdata(L, lua_upvalueindex(1));
    buf->len = 0;
    char err[256];
    int rc = fn_lua_encode_json(L, 1, buf, err, sizeof err);
    if (rc == 0)
        lua_pushlstring(L, buf->data, buf->len);
    if (buf->cap > ENCODE_BUFFER_KEEP)
        fn_buf_release(buf);
    if (rc != 0)
        return luaL_error(L, "json.encode: %s", err);
    return 1;
}

/* json.decode(s): built straight from the text; memory errors raise as usual (the values are Lua's). */
static int lib_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    char err[256];
    if (fn_json_parse(L, text, len, 1, err, sizeof err) != 0)
        return luaL_error(L, "json.decode: %s", err);
    return 1;
}

/* json.array([t]): marks t (or a new table) as an array, so that it encodes as [] even when empty. */
static int lib_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    fn_lua_push_array_metatable(L);
    lua_setmetatable(L, 1);
    return 1;
}

void fn_lua_json_open(lua_State *L)
{
    luaL_checkstack(L, 4, "json library");
    lua_createtable(L, 0, 4);

    fn_buf *buf = lua_newuserdatauv(L, sizeof *buf, 0);
    *buf = (fn_buf)FN_BUF_INIT;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, encode_buffer_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, lib_encode, 1);
    lua_setfield(L, -2, "encode");

    lua_pushcfunction(L, lib_decode);
    lua_setfield(L, -2, "decode");
    lua_pushcfunction(L, lib_array);
    lua_setfield(L, -2, "array");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");

    fn_lua_push_array_metatable(L);
    lua_pop(L, 1);
    lua_setglobal(L, "json");
}
