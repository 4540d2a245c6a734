/* fn_buf: a growable byte buffer (malloc-backed) used to build response bodies and JSON text. */
#ifndef FN_BUF_H
#define FN_BUF_H

#include <stddef.h>

/*
 * Ownership: the buffer owns `data` (malloc'd); fn_buf_release frees it and resets the buffer.
 * fn_buf_steal hands `data` to the caller (who frees it with free()) and resets the buffer.
 * Appending functions return 0, or -ENOMEM (the buffer is then unchanged).
 * `data` is always NUL-terminated after a successful append (the NUL is not counted in len).
 */
typedef struct fn_buf {
    char *data;
    size_t len;
    size_t cap;
} fn_buf;

#define FN_BUF_INIT                                                                                                    \
    {                                                                                                                  \
        NULL, 0, 0                                                                                                     \
    }

int fn_buf_reserve(fn_buf *buf, size_t extra);
int fn_buf_append(fn_buf *buf, const void *data, size_t len);
int fn_buf_append_char(fn_buf *buf, char c);
int fn_buf_append_str(fn_buf *buf, const char *s);
/* Appends `s` as a JSON string literal (quoted and escaped). Bytes are copied as they are:
 * the caller checks UTF-8 validity where it matters. */
int fn_buf_append_json_string(fn_buf *buf, const char *s, size_t len);
/* Appends `s` percent-encoded for a URL path segment or query component: every byte but the unreserved
 * A-Z a-z 0-9 - . _ ~ becomes %XX. */
int fn_buf_append_percent(fn_buf *buf, const char *s, size_t len);
char *fn_buf_steal(fn_buf *buf);
void fn_buf_release(fn_buf *buf);

#endif
