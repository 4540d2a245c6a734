/* json_parse: a recursive-descent JSON parser that checks text, or builds Lua values from it directly. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_json.h"

/*
 * One pass over the text, no intermediate tree: with a lua_State the values are pushed as they are read
 * (objects and arrays built in place, strings without escapes pushed straight from the text), so a 2 KB
 * request body costs its Lua values and nothing else. Without one, the same grammar is only checked (the
 * gateway's 400 for an invalid body, before any function runs). RFC 8259, plus jansson's choices where the
 * RFC leaves room: an integer outside int64 is an error, "\u0000" only when allow_nul, any value at the top.
 */

typedef struct parser {
    lua_State *L; /* NULL: check only */
    const unsigned char *p, *start, *end;
    int allow_nul;
    int depth;
    int array_mt; /* with L: the stack slot of the array metatable */
    char *err;
    size_t cap;
} parser;

static int fail(parser *ps, const unsigned char *at, const char *reason)
{
    int line = 1, column = 1;
    for (const unsigned char *c = ps->start; c < at && c < ps->end; ++c) {
        if (*c == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    snprintf(ps->err, ps->cap, "line %d, column %d: %s", line, column, reason);
    return -1;
}

static void skip_space(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ++ps->p;
}

static int parse_value(parser *ps);

/* Well-formed UTF-8 sequence length at p (no overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; ++i) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string (ps->p at the opening quote). With L, pushes it. */
static int parse_string(parser *ps)
{
    const unsigned char *open = ps->p++;
    const unsigned char *run = ps->p; /* the stretch without escapes so far */
    int escaped = 0;
    luaL_Buffer b;
    for (;;) {
        if (ps->p >= ps->end)
            return fail(ps, open, "unterminated string");
        unsigned char c = *ps->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(ps, ps->p, "control character in a string");
        if (c >= 0x80) {
            size_t n = utf8_length(ps->p, ps->end);
            if (n == 0)
                return fail(ps, ps->p, "invalid UTF-8 in a string");
            ps->p += n;
            continue;
        }
        if (c != '\\') {
            ++ps->p;
            continue;
        }
        /* An escape: the text so far goes into a buffer, decoded characters follow. */
        if (ps->L != NULL && !escaped)
            luaL_buffinit(ps->L, &b);
        if (ps->L != NULL)
            luaL_addlstring(&b, (const char *)run, (size_t)(ps->p - run));
        escaped = 1;
        if (ps->end - ps->p < 2)
            return fail(ps, open, "unterminated string");
        char one;
        switch (ps->p[1]) {
        case '"':
            one = '"';
            break;
        case '\\':
            one = '\\';
            break;
        case '/':
            one = '/';
            break;
        case 'b':
            one = '\b';
            break;
        case 'f':
            one = '\f';
            break;
        case 'n':
            one = '\n';
            break;
        case 'r':
            one = '\r';
            break;
        case 't':
            one = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 6 || hex4(ps->p + 2, &cp) != 0)
                return fail(ps, ps->p, "invalid \\u escape");
            const unsigned char *at = ps->p;
            ps->p += 6;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* a high surrogate: its low half must follow */
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) != 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, at, "invalid Unicode surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                ps->p += 6;
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return fail(ps, at, "invalid Unicode surrogate pair");
            } else if (cp == 0 && !ps->allow_nul) {
                return fail(ps, at, "\\u0000 is not allowed");
            }
            char utf8[4];
            size_t n = utf8_encode(cp, utf8);
            if (ps->L != NULL)
                luaL_addlstring(&b, utf8, n);
            run = ps->p;
            continue;
        }
        default:
            return fail(ps, ps->p, "invalid escape");
        }
        if (ps->L != NULL)
            luaL_addchar(&b, one);
        ps->p += 2;
        run = ps->p;
    }
    if (ps->L != NULL) {
        if (escaped) {
            luaL_addlstring(&b, (const char *)run, (size_t)(ps->p - run));
            luaL_pushresult(&b);
        } else {
            lua_pushlstring(ps->L, (const char *)run, (size_t)(ps->p - run));
        }
    }
    ++ps->p; /* the closing quote */
    return 0;
}

static int digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(parser *ps)
{
    const unsigned char *start = ps->p;
    int is_float = 0;
    if (*ps->p == '-')
        ++ps->p;
    if (ps->p >= ps->end || !digit(*ps->p))
        return fail(ps, start, "invalid number");
    if (*ps->p == '0')
        ++ps->p;
    else
        while (ps->p < ps->end && digit(*ps->p))
            ++ps->p;
    if (ps->p < ps->end && *ps->p == '.') {
        is_float = 1;
        ++ps->p;
        if (ps->p >= ps->end || !digit(*ps->p))
            return fail(ps, start, "invalid number");
        while (ps->p < ps->end && digit(*ps->p))
            ++ps->p;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        is_float = 1;
        ++ps->p;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ++ps->p;
        if (ps->p >= ps->end || !digit(*ps->p))
            return fail(ps, start, "invalid number");
        while (ps->p < ps->end && digit(*ps->p))
            ++ps->p;
    }
    size_t len = (size_t)(ps->p - start);
    char small[64], *text = len < sizeof(small) ? small : malloc(len + 1);
    if (text == NULL)
        return fail(ps, start, "out of memory");
    memcpy(text, start, len);
    text[len] = '\0';
    int rc = 0;
    if (!is_float) {
        char *stop;
        errno = 0;
        long long v = strtoll(text, &stop, 10);
        if (errno == ERANGE)
            rc = fail(ps, start, "too big integer");
        else if (ps->L != NULL)
            lua_pushinteger(ps->L, (lua_Integer)v);
    } else {
        errno = 0;
        double v = strtod(text, NULL);
        if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
            rc = fail(ps, start, "real number overflow");
        else if (ps->L != NULL)
            lua_pushnumber(ps->L, (lua_Number)v);
    }
    if (text != small)
        free(text);
    return rc;
}

static int literal(parser *ps, const char *word, size_t len)
{
    if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, word, len) != 0)
        return fail(ps, ps->p, "invalid literal");
    ps->p += len;
    return 0;
}

static int enter(parser *ps)
{
    if (++ps->depth > FN_JSON_MAX_DEPTH)
        return fail(ps, ps->p, "nesting deeper than " FN_JSON_MAX_DEPTH_TEXT " levels");
    if (ps->L != NULL && !lua_checkstack(ps->L, 4))
        return fail(ps, ps->p, "Lua stack overflow");
    return 0;
}

static int parse_object(parser *ps)
{
    if (enter(ps) != 0)
        return -1;
    if (ps->L != NULL)
        lua_createtable(ps->L, 0, 4);
    ++ps->p; /* { */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ++ps->p;
        --ps->depth;
        return 0;
    }
    for (;;) {
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, ps->p, "string or '}' expected");
        if (parse_string(ps) != 0)
            return -1;
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail(ps, ps->p, "':' expected");
        ++ps->p;
        if (parse_value(ps) != 0)
            return -1;
        if (ps->L != NULL)
            lua_rawset(ps->L, -3);
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ++ps->p;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ++ps->p;
            --ps->depth;
            return 0;
        }
        return fail(ps, ps->p, "',' or '}' expected");
    }
}

static int parse_array(parser *ps)
{
    if (enter(ps) != 0)
        return -1;
    if (ps->L != NULL) {
        lua_createtable(ps->L, 4, 0);
        lua_pushvalue(ps->L, ps->array_mt);
        lua_setmetatable(ps->L, -2);
    }
    ++ps->p; /* [ */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ++ps->p;
        --ps->depth;
        return 0;
    }
    for (lua_Integer i = 1;; ++i) {
        if (parse_value(ps) != 0)
            return -1;
        if (ps->L != NULL)
            lua_rawseti(ps->L, -2, i);
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ++ps->p;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ++ps->p;
            --ps->depth;
            return 0;
        }
        return fail(ps, ps->p, "',' or ']' expected");
    }
}

static int parse_value(parser *ps)
{
    skip_space(ps);
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "a value expected");
    switch (*ps->p) {
    case '{':
        return parse_object(ps);
    case '[':
        return parse_array(ps);
    case '"':
        return parse_string(ps);
    case 't':
        if (literal(ps, "true", 4) != 0)
            return -1;
        if (ps->L != NULL)
            lua_pushboolean(ps->L, 1);
        return 0;
    case 'f':
        if (literal(ps, "false", 5) != 0)
            return -1;
        if (ps->L != NULL)
            lua_pushboolean(ps->L, 0);
        return 0;
    case 'n':
        if (literal(ps, "null", 4) != 0)
            return -1;
        if (ps->L != NULL)
            fn_lua_push_null(ps->L);
        return 0;
    default:
        if (*ps->p == '-' || digit(*ps->p))
            return parse_number(ps);
        if (*ps->p >= 0x21 && *ps->p < 0x7f) {
            char what[32];
            snprintf(what, sizeof(what), "invalid character '%c'", *ps->p);
            return fail(ps, ps->p, what);
        }
        return fail(ps, ps->p, "invalid character");
    }
}

int fn_json_parse(lua_State *L, const char *text, size_t len, int allow_nul, char *err, size_t cap)
{
    const unsigned char *t = (const unsigned char *)(text != NULL ? text : "");
    parser ps = {L, t, t, t + len, allow_nul, 0, 0, err, cap};
    int top = 0;
    if (L != NULL) {
        top = lua_gettop(L);
        if (!lua_checkstack(L, 8))
            return fail(&ps, ps.p, "Lua stack overflow");
        fn_lua_push_array_metatable(L);
        ps.array_mt = top + 1;
    }
    int rc = parse_value(&ps);
    if (rc == 0) {
        skip_space(&ps);
        if (ps.p != ps.end)
            rc = fail(&ps, ps.p, "end of text expected after the value");
    }
    if (L != NULL) {
        if (rc != 0) {
            lua_settop(L, top);
            return -1;
        }
        lua_replace(L, top + 1); /* the value takes the metatable's slot */
    }
    return rc;
}
