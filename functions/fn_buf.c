/* fn_buf: a growable, always NUL-terminated byte buffer for response bodies and JSON text. */
#include "fn_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FN_BUF_MIN_CAP 64

int fn_buf_reserve(fn_buf *buf, size_t extra)
{
    /* One byte more than asked for: the terminating NUL is never counted in len. */
    if (extra > SIZE_MAX - 1 - buf->len)
        return -ENOMEM;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return 0;

    size_t cap = buf->cap != 0 ? buf->cap : FN_BUF_MIN_CAP;
    while (cap < need)
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    char *data = realloc(buf->data, cap);
    if (data == NULL)
        return -ENOMEM;
    data[buf->len] = '\0';
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int fn_buf_append(fn_buf *buf, const void *data, size_t len)
{
    int rc = fn_buf_reserve(buf, len);
    if (rc != 0)
        return rc;
    if (len != 0)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int fn_buf_append_char(fn_buf *buf, char c)
{
    return fn_buf_append(buf, &c, 1);
}

int fn_buf_append_str(fn_buf *buf, const char *s)
{
    return fn_buf_append(buf, s, strlen(s));
}

/* The escape for byte c, or NULL when c goes out as it is. Other control bytes use \u00XX. */
static const char *json_short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        return NULL;
    }
}

int fn_buf_append_json_string(fn_buf *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    /* Size the output exactly first, so that a failed reserve leaves the buffer unchanged. */
    size_t out_len = 2;
    for (size_t i = 0; i < len; i++) {
        size_t add = json_short_escape(p[i]) != NULL ? 2 : p[i] < 0x20 ? 6 : 1;
        if (out_len > SIZE_MAX - add)
            return -ENOMEM;
        out_len += add;
    }
    int rc = fn_buf_reserve(buf, out_len);
    if (rc != 0)
        return rc;

    char *w = buf->data + buf->len;
    *w++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        const char *esc = json_short_escape(c);
        if (esc != NULL) {
            *w++ = esc[0];
            *w++ = esc[1];
        } else if (c < 0x20) {
            memcpy(w, "\\u00", 4);
            w[4] = hex[c >> 4];
            w[5] = hex[c & 0xf];
            w += 6;
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    *w = '\0';
    buf->len = (size_t)(w - buf->data);
    return 0;
}

char *fn_buf_steal(fn_buf *buf)
{
    char *data = buf->data;
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    return data;
}

void fn_buf_release(fn_buf *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

int fn_buf_append_percent(fn_buf *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len > SIZE_MAX / 3 || fn_buf_reserve(buf, len * 3) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            buf->data[buf->len++] = (char)c;
        } else {
            buf->data[buf->len++] = '%';
            buf->data[buf->len++] = hex[c >> 4];
            buf->data[buf->len++] = hex[c & 15];
        }
    }
    buf->data[buf->len] = '\0';
    return 0;
}
