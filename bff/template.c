/* template: JSON Pointer lookups, and templates compiled once and evaluated against the composition context. */
#include "template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../functions/fn_buf.h"

/* ---- JSON Pointers ---- */

const char *bff__pointer_syntax_error(const char *ptr, size_t len)
{
    if (len == 0)
        return NULL;
    if (ptr[0] != '/')
        return "a JSON Pointer starts with \"/\"";
    for (size_t i = 0; i < len; ++i) {
        if (ptr[i] == '~' && (i + 1 == len || (ptr[i + 1] != '0' && ptr[i + 1] != '1')))
            return "\"~\" must be followed by 0 or 1";
    }
    return NULL;
}

int bff_json_pointer_valid(const char *ptr, size_t len)
{
    return bff__pointer_syntax_error(ptr, len) == NULL;
}

/* A decimal array index without leading zeros; saturates at SIZE_MAX, which names no element. */
static int parse_index(const char *s, size_t len, size_t *out)
{
    if (len == 0 || (s[0] == '0' && len > 1))
        return 0;
    size_t v = 0;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        size_t digit = (size_t)(s[i] - '0');
        v = v > (SIZE_MAX - digit) / 10 ? SIZE_MAX : v * 10 + digit;
    }
    *out = v;
    return 1;
}

/* Unescapes a valid segment (len bytes) into out, which has room for len bytes; returns the new length. */
static size_t unescape_segment(const char *seg, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (seg[i] == '~') {
            out[n++] = seg[i + 1] == '1' ? '/' : '~';
            ++i;
        } else {
            out[n++] = seg[i];
        }
    }
    return n;
}

static const json_t *step_by_key(const json_t *v, const char *key, size_t len)
{
    size_t index;
    if (json_is_object(v))
        return json_object_getn(v, key, len);
    if (json_is_array(v) && parse_index(key, len, &index))
        return json_array_get(v, index);
    return NULL;
}

const json_t *bff_json_pointer(const json_t *doc, const char *ptr, size_t len)
{
    if (!bff_json_pointer_valid(ptr, len))
        return NULL;
    const json_t *v = doc;
    for (size_t i = 0; v != NULL && i < len;) {
        size_t start = i + 1, end = start;
        while (end < len && ptr[end] != '/')
            ++end;
        const char *seg = ptr + start;
        size_t slen = end - start;
        if (memchr(seg, '~', slen) == NULL) {
            v = step_by_key(v, seg, slen);
        } else {
            char small[256];
            char *buf = slen <= sizeof(small) ? small : malloc(slen);
            if (buf == NULL)
                return NULL;
            v = step_by_key(v, buf, unescape_segment(seg, slen, buf));
            if (buf != small)
                free(buf);
        }
        i = end;
    }
    return v;
}

int bff__pointer_parse(bff__pointer *p, const char *ptr, size_t len)
{
    memset(p, 0, sizeof(*p));
    if (bff__pointer_syntax_error(ptr, len) != NULL)
        return -EINVAL;
    size_t nsegs = 0;
    for (size_t i = 0; i < len; ++i)
        nsegs += ptr[i] == '/';
    /* Unescaped keys with their NULs take at most len bytes: each "/" becomes a NUL, "~x" one byte. */
    char *block = malloc(nsegs * sizeof(bff__pointer_segment) + 2 * (len + 1));
    if (block == NULL)
        return -ENOMEM;
    bff__pointer_segment *segs = (bff__pointer_segment *)(void *)block;
    char *text = block + nsegs * sizeof(*segs);
    char *keys = text + len + 1;
    memcpy(text, ptr, len);
    text[len] = '\0';
    for (size_t s = 0, i = 0; s < nsegs; ++s) {
        size_t start = i + 1, end = start;
        while (end < len && ptr[end] != '/')
            ++end;
        segs[s].key = keys;
        segs[s].len = unescape_segment(ptr + start, end - start, keys);
        keys[segs[s].len] = '\0';
        keys += segs[s].len + 1;
        segs[s].index = 0;
        segs[s].is_index = parse_index(segs[s].key, segs[s].len, &segs[s].index);
        i = end;
    }
    p->segs = segs;
    p->nsegs = nsegs;
    p->text = text;
    p->text_len = len;
    return 0;
}

const json_t *bff__pointer_get(const bff__pointer *p, const json_t *doc)
{
    const json_t *v = doc;
    for (size_t s = 0; v != NULL && s < p->nsegs; ++s) {
        const bff__pointer_segment *seg = &p->segs[s];
        if (json_is_object(v))
            v = json_object_getn(v, seg->key, seg->len);
        else if (json_is_array(v) && seg->is_index)
            v = json_array_get(v, seg->index);
        else
            v = NULL;
    }
    return v;
}

void bff__pointer_release(bff__pointer *p)
{
    free(p->segs);
    memset(p, 0, sizeof(*p));
}

/* ---- compiled templates ---- */

typedef enum template_kind { TEMPLATE_CONST, TEMPLATE_TEXT, TEMPLATE_OBJECT, TEMPLATE_ARRAY } template_kind;

/* A run of literal text (ref.text == NULL) or a reference. */
typedef struct template_part {
    char *text;
    size_t len;
    bff__pointer ref;
} template_part;

struct bff_template {
    template_kind kind;
    int from_string;      /* compiled from a JSON string: CONST (a string) or TEXT */
    json_t *constant;     /* CONST */
    template_part *parts; /* TEXT, in order; adjacent literals are merged */
    size_t nparts;
    int whole_ref;           /* TEXT: the string is exactly one reference */
    bff_template **children; /* OBJECT, ARRAY */
    char **keys;             /* OBJECT: each child's key (len in key_lens) */
    size_t *key_lens;
    size_t nchildren;
};

#define OUT_OF_MEMORY "out of memory"

void bff_template_free(bff_template *t)
{
    if (t == NULL)
        return;
    json_decref(t->constant);
    for (size_t i = 0; i < t->nparts; ++i) {
        free(t->parts[i].text);
        bff__pointer_release(&t->parts[i].ref);
    }
    free(t->parts);
    for (size_t i = 0; i < t->nchildren; ++i) {
        bff_template_free(t->children[i]);
        if (t->keys != NULL)
            free(t->keys[i]);
    }
    free(t->children);
    free(t->keys);
    free(t->key_lens);
    free(t);
}

static int add_part(bff_template *t, template_part part)
{
    template_part *parts = realloc(t->parts, (t->nparts + 1) * sizeof(*parts));
    if (parts == NULL)
        return -ENOMEM;
    t->parts = parts;
    t->parts[t->nparts++] = part;
    return 0;
}

/* Moves the literal text gathered so far into a part of its own. */
static int flush_literal(bff_template *t, fn_buf *lit)
{
    if (lit->len == 0)
        return 0;
    template_part part = {.len = lit->len};
    part.text = fn_buf_steal(lit);
    if (add_part(t, part) == 0)
        return 0;
    free(part.text);
    return -ENOMEM;
}

/* Why "${ptr}" is not a usable reference, or NULL. */
static const char *reference_problem(const char *ptr, size_t len)
{
    if (len == 0 || ptr[0] != '/')
        return "must be a JSON Pointer starting with \"/\", such as \"${/request/params/id}\"";
    if (memchr(ptr, '\0', len) != NULL)
        return "contains a NUL byte";
    for (size_t i = 0; i + 1 < len; ++i) {
        if (ptr[i] == '$' && ptr[i + 1] == '{')
            return "\"${\" inside a reference (references do not nest)";
    }
    return bff__pointer_syntax_error(ptr, len);
}

/* Adds the reference ptr (len bytes) as a part; -EINVAL with a message when it is not usable. */
static int add_reference(bff_template *t, const char *ptr, size_t len, char *err, size_t cap)
{
    const char *problem = reference_problem(ptr, len);
    if (problem != NULL) {
        snprintf(err, cap, "bad reference \"${%.*s}\": %s", (int)len, ptr, problem);
        return -EINVAL;
    }
    template_part part = {0};
    if (bff__pointer_parse(&part.ref, ptr, len) != 0 || add_part(t, part) != 0) {
        bff__pointer_release(&part.ref);
        snprintf(err, cap, OUT_OF_MEMORY);
        return -ENOMEM;
    }
    return 0;
}

/* Splits s into literal runs and references. */
static int parse_string(bff_template *t, const char *s, size_t len, char *err, size_t cap)
{
    fn_buf lit = FN_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            rc = fn_buf_append(&lit, "${", 2);
            i += 3;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            const char *open = s + i + 2;
            const char *close = memchr(open, '}', len - i - 2);
            if (close == NULL) {
                int shown = len > 200 ? 200 : (int)len;
                snprintf(err, cap, "unterminated \"${\" in \"%.*s%s\"", shown, s, len > 200 ? "..." : "");
                rc = -EINVAL;
                break;
            }
            if (flush_literal(t, &lit) != 0) {
                rc = -ENOMEM;
                break;
            }
            rc = add_reference(t, open, (size_t)(close - open), err, cap);
            i = (size_t)(close - s) + 1;
        } else {
            rc = fn_buf_append_char(&lit, s[i]);
            ++i;
        }
    }
    if (rc == 0)
        rc = flush_literal(t, &lit);
    if (rc == -ENOMEM)
        snprintf(err, cap, OUT_OF_MEMORY);
    fn_buf_release(&lit);
    return rc;
}

/* Makes t, which holds only literal text, a constant string. */
static int make_constant_string(bff_template *t)
{
    const char *text = t->nparts == 1 ? t->parts[0].text : "";
    t->constant = json_stringn_nocheck(text, t->nparts == 1 ? t->parts[0].len : 0);
    if (t->constant == NULL)
        return -ENOMEM;
    if (t->nparts == 1)
        free(t->parts[0].text);
    free(t->parts);
    t->parts = NULL;
    t->nparts = 0;
    t->kind = TEMPLATE_CONST;
    return 0;
}

static bff_template *compile_string(const json_t *def, char *err, size_t cap)
{
    bff_template *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, cap, OUT_OF_MEMORY);
        return NULL;
    }
    t->kind = TEMPLATE_TEXT;
    t->from_string = 1;
    if (parse_string(t, json_string_value(def), json_string_length(def), err, cap) != 0)
        goto fail;
    int has_ref = 0;
    for (size_t i = 0; i < t->nparts; ++i)
        has_ref |= t->parts[i].ref.text != NULL;
    if (!has_ref && make_constant_string(t) != 0) {
        snprintf(err, cap, OUT_OF_MEMORY);
        goto fail;
    }
    t->whole_ref = t->nparts == 1 && has_ref;
    return t;
fail:
    bff_template_free(t);
    return NULL;
}

/* Puts `piece` ("name" or "[2]") in front of the location of a problem ("ids[2]" -> "user.ids[2]"). */
static void where_prepend(char *where, size_t cap, const char *piece)
{
    char tmp[256];
    const char *sep = where[0] != '\0' && where[0] != '[' ? "." : "";
    snprintf(tmp, sizeof(tmp), "%s%s%s", piece, sep, where);
    snprintf(where, cap, "%s", tmp);
}

static bff_template *compile_node(const json_t *def, char *err, size_t cap, char *where, size_t wcap);

/* An object or array whose members are all constant becomes one constant. */
static int collapse_constant(bff_template *t)
{
    for (size_t i = 0; i < t->nchildren; ++i) {
        if (t->children[i]->kind != TEMPLATE_CONST)
            return 0;
    }
    json_t *c = t->kind == TEMPLATE_OBJECT ? json_object() : json_array();
    for (size_t i = 0; c != NULL && i < t->nchildren; ++i) {
        json_t *v = t->children[i]->constant;
        int rc = t->kind == TEMPLATE_OBJECT ? json_object_setn_nocheck(c, t->keys[i], t->key_lens[i], v)
                                            : json_array_append(c, v);
        if (rc != 0) {
            json_decref(c);
            c = NULL;
        }
    }
    if (c == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->nchildren; ++i) {
        bff_template_free(t->children[i]);
        if (t->keys != NULL)
            free(t->keys[i]);
    }
    free(t->children);
    free(t->keys);
    free(t->key_lens);
    t->children = NULL;
    t->keys = NULL;
    t->key_lens = NULL;
    t->nchildren = 0;
    t->kind = TEMPLATE_CONST;
    t->constant = c;
    return 0;
}

static bff_template *compile_container(const json_t *def, char *err, size_t cap, char *where, size_t wcap)
{
    int is_object = json_is_object(def);
    size_t n = is_object ? json_object_size(def) : json_array_size(def);
    bff_template *t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    t->kind = is_object ? TEMPLATE_OBJECT : TEMPLATE_ARRAY;
    t->children = calloc(n + 1, sizeof(*t->children));
    if (t->children == NULL)
        goto oom;
    if (is_object) {
        t->keys = calloc(n + 1, sizeof(*t->keys));
        t->key_lens = calloc(n + 1, sizeof(*t->key_lens));
        if (t->keys == NULL || t->key_lens == NULL)
            goto oom;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *)def, key, key_len, value)
        {
            size_t i = t->nchildren;
            t->keys[i] = malloc(key_len + 1);
            if (t->keys[i] == NULL)
                goto oom;
            memcpy(t->keys[i], key, key_len);
            t->keys[i][key_len] = '\0';
            t->key_lens[i] = key_len;
            t->children[i] = compile_node(value, err, cap, where, wcap);
            if (t->children[i] == NULL) {
                where_prepend(where, wcap, key);
                goto fail;
            }
            t->nchildren++;
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            t->children[i] = compile_node(json_array_get(def, i), err, cap, where, wcap);
            if (t->children[i] == NULL) {
                char piece[32];
                snprintf(piece, sizeof(piece), "[%zu]", i);
                where_prepend(where, wcap, piece);
                goto fail;
            }
            t->nchildren++;
        }
    }
    if (collapse_constant(t) != 0)
        goto oom;
    return t;
oom:
    snprintf(err, cap, OUT_OF_MEMORY);
fail:
    if (t != NULL && t->keys != NULL && t->keys[t->nchildren] != NULL)
        free(t->keys[t->nchildren]); /* a key whose value failed to compile */
    bff_template_free(t);
    return NULL;
}

static bff_template *compile_node(const json_t *def, char *err, size_t cap, char *where, size_t wcap)
{
    if (json_is_string(def))
        return compile_string(def, err, cap);
    if (json_is_object(def) || json_is_array(def))
        return compile_container(def, err, cap, where, wcap);
    bff_template *t = calloc(1, sizeof(*t));
    if (t != NULL)
        t->constant = json_deep_copy(def);
    if (t == NULL || t->constant == NULL) {
        free(t);
        snprintf(err, cap, OUT_OF_MEMORY);
        return NULL;
    }
    t->kind = TEMPLATE_CONST;
    return t;
}

bff_template *bff_template_compile(const json_t *def, char *err, size_t cap)
{
    if (def == NULL) {
        snprintf(err, cap, "no template value");
        return NULL;
    }
    char where[256] = "";
    bff_template *t = compile_node(def, err, cap, where, sizeof(where));
    size_t n = t == NULL ? strlen(err) : 0;
    if (t == NULL && where[0] != '\0' && n + 1 < cap)
        snprintf(err + n, cap - n, " (at %s)", where);
    return t;
}

int bff_template_is_constant(const bff_template *t)
{
    return t->kind == TEMPLATE_CONST;
}

void bff_template_foreach_ref(const bff_template *t, void (*cb)(void *data, const char *pointer), void *data)
{
    for (size_t i = 0; i < t->nparts; ++i) {
        if (t->parts[i].ref.text != NULL)
            cb(data, t->parts[i].ref.text);
    }
    for (size_t i = 0; i < t->nchildren; ++i)
        bff_template_foreach_ref(t->children[i], cb, data);
}

/* ---- evaluation ---- */

/* Text being built: starts in the caller's stack buffer, moves to the heap when it outgrows it. */
typedef struct text_buf {
    char *data;
    size_t len;
    size_t cap; /* always > len: room for the final NUL */
    int heap;
} text_buf;

static int text_grow(text_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 4 - b->len)
        return -ENOMEM;
    size_t cap = b->cap * 2;
    if (cap < b->len + extra + 1)
        cap = b->len + extra + 1;
    char *data = b->heap ? realloc(b->data, cap) : malloc(cap);
    if (data == NULL)
        return -ENOMEM;
    if (!b->heap)
        memcpy(data, b->data, b->len);
    b->data = data;
    b->cap = cap;
    b->heap = 1;
    return 0;
}

static int text_append(text_buf *b, const char *s, size_t n)
{
    if (n >= b->cap - b->len && text_grow(b, n) != 0)
        return -ENOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* Appends s, percent-encoded for PATH and QUERY. */
static int text_append_encoded(text_buf *b, const char *s, size_t n, bff_template_encoding enc)
{
    if (enc != BFF_TEMPLATE_PATH && enc != BFF_TEMPLATE_QUERY)
        return text_append(b, s, n);
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && unreserved((unsigned char)s[run]))
            ++run;
        if (run > i && text_append(b, s + i, run - i) != 0)
            return -ENOMEM;
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char pct[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (text_append(b, pct, 3) != 0)
            return -ENOMEM;
        i = run + 1;
    }
    return 0;
}

/* The shortest "%g" text that reads back as d, spelled the way jansson writes reals ("1.0", "1e20"). */
static size_t format_real(double d, char *out, size_t cap)
{
    for (int prec = 15; prec <= 17; ++prec) {
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    char *e = strchr(out, 'e');
    if (e != NULL) { /* "1e+20" -> "1e20", "1e-07" -> "1e-7" */
        char *to = e + 1;
        const char *from = e + 1;
        if (*from == '+')
            ++from;
        else if (*from == '-')
            *to++ = *from++;
        while (*from == '0' && from[1] != '\0')
            ++from;
        memmove(to, from, strlen(from) + 1);
    } else if (strchr(out, '.') == NULL) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, ".0");
    }
    return strlen(out);
}

typedef struct dump_sink {
    text_buf *b;
    bff_template_encoding enc;
} dump_sink;

static int dump_to_text(const char *buffer, size_t size, void *data)
{
    dump_sink *sink = data;
    return text_append_encoded(sink->b, buffer, size, sink->enc) == 0 ? 0 : -1;
}

/* Appends v (neither NULL nor null) as text. */
static int append_value(text_buf *b, const json_t *v, bff_template_encoding enc)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return text_append_encoded(b, json_string_value(v), json_string_length(v), enc);
    case JSON_INTEGER:
        return text_append_encoded(
            b, num, (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)), enc);
    case JSON_REAL:
        return text_append_encoded(b, num, format_real(json_real_value(v), num, sizeof(num)), enc);
    case JSON_TRUE:
        return text_append(b, "true", 4);
    case JSON_FALSE:
        return text_append(b, "false", 5);
    default: {
        dump_sink sink = {b, enc};
        return json_dump_callback(v, dump_to_text, &sink, JSON_COMPACT) == 0 ? 0 : -ENOMEM;
    }
    }
}

static int has_header_breaker(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 1;
    }
    return 0;
}

#define HEADER_BREAKER "holds CR, LF or NUL, which a header cannot carry"

/* Appends the text of a TEXT template; every reference must name a value that is not null. */
static int eval_text(const bff_template *t, const json_t *ctx, bff_template_encoding enc, text_buf *b, char *err,
                     size_t cap)
{
    for (size_t i = 0; i < t->nparts; ++i) {
        const template_part *part = &t->parts[i];
        if (part->ref.text == NULL) {
            if (enc == BFF_TEMPLATE_HEADER && has_header_breaker(part->text, part->len)) {
                snprintf(err, cap, "the template's text " HEADER_BREAKER);
                return -EINVAL;
            }
            if (text_append(b, part->text, part->len) != 0)
                goto oom;
            continue;
        }
        const json_t *v = bff__pointer_get(&part->ref, ctx);
        if (v == NULL || json_is_null(v)) {
            snprintf(err, cap, "reference ${%s} is missing", part->ref.text);
            return -ENOENT;
        }
        if (enc == BFF_TEMPLATE_HEADER && json_is_string(v) &&
            has_header_breaker(json_string_value(v), json_string_length(v))) {
            snprintf(err, cap, "reference ${%s} " HEADER_BREAKER, part->ref.text);
            return -EINVAL;
        }
        if (append_value(b, v, enc) != 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, cap, OUT_OF_MEMORY);
    return -ENOMEM;
}

static json_t *eval_container(const bff_template *t, const json_t *ctx, char *err, size_t cap)
{
    json_t *out = t->kind == TEMPLATE_OBJECT ? json_object() : json_array();
    if (out == NULL)
        goto oom;
    for (size_t i = 0; i < t->nchildren; ++i) {
        json_t *v = bff_template_eval(t->children[i], ctx, err, cap);
        if (v == NULL) {
            json_decref(out);
            return NULL;
        }
        int rc = t->kind == TEMPLATE_OBJECT ? json_object_setn_new_nocheck(out, t->keys[i], t->key_lens[i], v)
                                            : json_array_append_new(out, v);
        if (rc != 0) {
            json_decref(out);
            goto oom;
        }
    }
    return out;
oom:
    snprintf(err, cap, OUT_OF_MEMORY);
    return NULL;
}

json_t *bff_template_eval(const bff_template *t, const json_t *ctx, char *err, size_t cap)
{
    if (t->kind == TEMPLATE_CONST)
        return json_incref(t->constant);
    if (t->kind != TEMPLATE_TEXT)
        return eval_container(t, ctx, err, cap);
    if (t->whole_ref) {
        const json_t *v = bff__pointer_get(&t->parts[0].ref, ctx);
        return v != NULL ? json_incref((json_t *)v) : json_null();
    }
    char stack[256];
    text_buf b = {stack, 0, sizeof(stack), 0};
    json_t *out = NULL;
    if (eval_text(t, ctx, BFF_TEMPLATE_RAW, &b, err, cap) == 0) {
        /* Valid UTF-8: literal text and strings come from jansson, numbers and JSON text are ASCII or UTF-8. */
        out = json_stringn_nocheck(b.data, b.len);
        if (out == NULL)
            snprintf(err, cap, OUT_OF_MEMORY);
    }
    if (b.heap)
        free(b.data);
    return out;
}

char *bff_template_eval_string(const bff_template *t, const json_t *ctx, bff_template_encoding enc, size_t *len,
                               char *err, size_t cap)
{
    if (!t->from_string) {
        snprintf(err, cap, "the template is not a string");
        return NULL;
    }
    char stack[256];
    text_buf b = {stack, 0, sizeof(stack), 0};
    int rc;
    if (t->kind == TEMPLATE_CONST) {
        const char *s = json_string_value(t->constant);
        size_t n = json_string_length(t->constant);
        rc = enc == BFF_TEMPLATE_HEADER && has_header_breaker(s, n) ? -EINVAL : text_append(&b, s, n);
        if (rc == -EINVAL)
            snprintf(err, cap, "the template's text " HEADER_BREAKER);
        else if (rc != 0)
            snprintf(err, cap, OUT_OF_MEMORY);
    } else {
        rc = eval_text(t, ctx, enc, &b, err, cap);
    }
    char *out = NULL;
    if (rc == 0) {
        out = b.heap ? b.data : malloc(b.len + 1);
        if (out == NULL) {
            snprintf(err, cap, OUT_OF_MEMORY);
        } else {
            if (!b.heap)
                memcpy(out, b.data, b.len);
            out[b.len] = '\0';
            if (len != NULL)
                *len = b.len;
        }
    } else if (b.heap) {
        free(b.data);
    }
    return out;
}
