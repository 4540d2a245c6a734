/* h1_response: parsing an upstream's HTTP/1.x response: the head, and chunked bodies.
 *
 * Pure functions over byte ranges (no sockets, no allocation but the caller's fn_buf), so the upstream client
 * and the unit tests share them. Strict where leniency lets two parties read one message two ways (RFC 9112):
 * whitespace before a header's colon, obsolete line folding, a Content-Length that is not one decimal number
 * or that repeats with another value, a chunk size that is not hexadecimal are all errors. Lines may end in
 * CRLF or LF. */
#ifndef GW_H1_RESPONSE_H
#define GW_H1_RESPONSE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../functions/fn_buf.h"

#define GW_H1_HEAD_MAX 65536 /* a longer head is an error */

typedef enum gw_h1_body {
    GW_H1_BODY_NONE,    /* 204, 304, 1xx, or an answer to HEAD */
    GW_H1_BODY_LENGTH,  /* content_length bytes */
    GW_H1_BODY_CHUNKED, /* Transfer-Encoding ending in chunked */
    GW_H1_BODY_CLOSE,   /* until the upstream closes the connection */
} gw_h1_body;

typedef struct gw_h1_head {
    int status;
    int minor_version;
    int keep_alive; /* the connection may carry another request once this response is read */
    gw_h1_body body;
    uint64_t content_length;  /* with GW_H1_BODY_LENGTH */
    const char *content_type; /* points into the parsed bytes (NULL without one) */
    size_t content_type_len;
} gw_h1_head;

/* Parses the head at buf[0..len). Returns its length in bytes (> 0) when it is complete, 0 when more bytes are
 * needed (and len < GW_H1_HEAD_MAX), -1 when it is malformed or too long: *err says why (static text).
 * `to_head` says the request was HEAD (no body follows whatever the headers say). A 1xx head (other than 101,
 * an error) is returned like any other: the caller skips it and parses the next. */
ssize_t gw_h1_parse_head(const char *buf, size_t len, int to_head, gw_h1_head *out, const char **err);

typedef struct gw_h1_chunked {
    int state;     /* private */
    uint64_t left; /* private: bytes left in the current chunk */
    size_t line;   /* private: bytes of the current size or trailer line seen */
    int done;      /* the last chunk and the trailers have been read */
} gw_h1_chunked;

/* Decodes chunked bytes in[0..len), appending the data to out. Returns the bytes consumed: all of len unless the
 * body ends inside it (then d->done is set and what follows is the next response's); -1 when malformed or out of
 * memory (*err says which). Start with a zeroed decoder. */
ssize_t gw_h1_chunked_feed(gw_h1_chunked *d, const char *in, size_t len, fn_buf *out, const char **err);

#endif
