/* h1_response: parsing an upstream's HTTP/1.x response head and chunked body (see h1_response.h). */
#include "h1_response.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Does the comma-separated list value[0..len) hold `token` (case-insensitively)? `last` asks for the last one. */
static int list_has(const char *value, size_t len, const char *token, int last)
{
    size_t tlen = strlen(token);
    int found = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            ++i;
        size_t start = i;
        while (i < len && value[i] != ',')
            ++i;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            --end;
        if (end == start)
            continue;
        int match = end - start == tlen && strncasecmp(value + start, token, tlen) == 0;
        if (!last && match)
            return 1;
        found = match;
    }
    return found;
}

static int parse_length(const char *v, size_t len, uint64_t *out)
{
    if (len == 0 || len > 15) /* at most 10^15 - 1: far beyond any body we accept */
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* The next line of buf[at..len): its end (the '\n') or NULL when incomplete; *content_end excludes the '\r'. */
static const char *next_line(const char *buf, size_t at, size_t len, size_t *content_end)
{
    const char *nl = memchr(buf + at, '\n', len - at);
    if (nl == NULL)
        return NULL;
    size_t end = (size_t)(nl - buf);
    if (end > at && buf[end - 1] == '\r')
        --end;
    *content_end = end;
    return nl;
}

ssize_t gw_h1_parse_head(const char *buf, size_t len, int to_head, gw_h1_head *out, const char **err)
{
    size_t scan = len < GW_H1_HEAD_MAX ? len : GW_H1_HEAD_MAX;
    memset(out, 0, sizeof(*out));
    size_t end;
    const char *nl = next_line(buf, 0, scan, &end);
    if (nl == NULL)
        goto Incomplete;
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (end < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
        (end > 12 && buf[12] != ' ')) {
        *err = "malformed status line";
        return -1;
    }
    out->minor_version = buf[7] - '0';
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    out->keep_alive = out->minor_version == 1;
    int has_length = 0, chunked = 0, has_te = 0;
    size_t at = (size_t)(nl - buf) + 1;
    for (;;) {
        if ((nl = next_line(buf, at, scan, &end)) == NULL)
            goto Incomplete;
        if (end == at) { /* the empty line */
            at = (size_t)(nl - buf) + 1;
            break;
        }
        if (buf[at] == ' ' || buf[at] == '\t') {
            *err = "obsolete header line folding";
            return -1;
        }
        size_t name_end = at;
        while (name_end < end && is_tchar((unsigned char)buf[name_end]))
            ++name_end;
        if (name_end == at || name_end == end || buf[name_end] != ':') {
            *err = "malformed header line";
            return -1;
        }
        size_t v = name_end + 1, v_end = end;
        while (v < v_end && (buf[v] == ' ' || buf[v] == '\t'))
            ++v;
        while (v_end > v && (buf[v_end - 1] == ' ' || buf[v_end - 1] == '\t'))
            --v_end;
        for (size_t i = v; i < v_end; ++i) {
            if (buf[i] == '\0' || buf[i] == '\r') {
                *err = "a control character in a header value";
                return -1;
            }
        }
        const char *name = buf + at, *value = buf + v;
        size_t nlen = name_end - at, vlen = v_end - v;
        if (name_is(name, nlen, "content-length")) {
            uint64_t n;
            if (parse_length(value, vlen, &n) != 0 || (has_length && n != out->content_length)) {
                *err = "invalid content-length";
                return -1;
            }
            has_length = 1;
            out->content_length = n;
        } else if (name_is(name, nlen, "transfer-encoding")) {
            has_te = 1;
            chunked = list_has(value, vlen, "chunked", 1);
        } else if (name_is(name, nlen, "connection")) {
            if (list_has(value, vlen, "close", 0))
                out->keep_alive = 0;
            else if (list_has(value, vlen, "keep-alive", 0))
                out->keep_alive = 1;
        } else if (name_is(name, nlen, "content-type")) {
            out->content_type = value;
            out->content_type_len = vlen;
        }
        at = (size_t)(nl - buf) + 1;
    }
    if (out->status == 101) {
        *err = "unexpected protocol switch";
        return -1;
    }
    if (to_head || out->status < 200 || out->status == 204 || out->status == 304) {
        out->body = GW_H1_BODY_NONE;
    } else if (has_te) {
        /* Transfer-Encoding wins over Content-Length; a sender that gave both is not trusted with another
         * response on this connection (RFC 9112 6.3). */
        out->body = chunked ? GW_H1_BODY_CHUNKED : GW_H1_BODY_CLOSE;
        if (!chunked || has_length)
            out->keep_alive = 0;
    } else if (has_length) {
        out->body = GW_H1_BODY_LENGTH;
    } else {
        out->body = GW_H1_BODY_CLOSE;
        out->keep_alive = 0;
    }
    return (ssize_t)at;
Incomplete:
    if (len >= GW_H1_HEAD_MAX) {
        *err = "response head too large";
        return -1;
    }
    return 0;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF };

#define CHUNK_LINE_MAX 4096

ssize_t gw_h1_chunked_feed(gw_h1_chunked *d, const char *in, size_t len, fn_buf *out, const char **err)
{
    size_t i = 0;
    while (i < len && !d->done) {
        unsigned char c = (unsigned char)in[i];
        switch (d->state) {
        case CH_SIZE:
            if (c >= '0' && c <= '9')
                d->left = d->left * 16 + (c - '0');
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                d->left = d->left * 16 + ((c | 0x20) - 'a' + 10);
            else if (d->line > 0 && (c == ';' || c == ' ' || c == '\t'))
                d->state = CH_EXT;
            else if (d->line > 0 && c == '\r')
                d->state = CH_SIZE_LF;
            else if (d->line > 0 && c == '\n')
                goto SizeDone;
            else
                goto Bad;
            if (d->state == CH_SIZE && ++d->line > 15) /* 16^15: more than any body we accept */
                goto Bad;
            ++i;
            break;
        case CH_EXT: /* chunk extensions are ignored */
            if (c == '\n')
                goto SizeDone;
            if (c == '\0' || ++d->line > CHUNK_LINE_MAX)
                goto Bad;
            if (c == '\r')
                d->state = CH_SIZE_LF;
            ++i;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto Bad;
        SizeDone:
            ++i;
            d->line = 0;
            d->state = d->left > 0 ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t n = len - i < d->left ? len - i : (size_t)d->left;
            if (fn_buf_append(out, in + i, n) != 0) {
                *err = "out of memory";
                return -1;
            }
            i += n;
            if ((d->left -= n) == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c == '\n') {
                d->state = CH_SIZE;
            } else if (c == '\r') {
                d->state = CH_DATA_LF;
            } else {
                goto Bad;
            }
            ++i;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto Bad;
            d->state = CH_SIZE;
            ++i;
            break;
        case CH_TRAILER: /* trailer lines, up to an empty one; their fields are ignored */
            ++i;
            if (c == '\n') {
                if (d->line == 0)
                    d->done = 1;
                d->line = 0;
            } else if (c == '\r') {
                d->state = CH_TRAILER_LF;
            } else if (c == '\0' || ++d->line > CHUNK_LINE_MAX) {
                goto Bad;
            }
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                goto Bad;
            ++i;
            d->state = CH_TRAILER;
            if (d->line == 0)
                d->done = 1;
            d->line = 0;
            break;
        }
    }
    return (ssize_t)i;
Bad:
    *err = "malformed chunked body";
    return -1;
}
