/* upstream: a scriptable HTTP/1.1 upstream server for e2e tests, one thread per connection (see upstream.h). */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (64 * 1024 * 1024)
#define HEADERS_MAX 256
#define CHUNK_LINE_MAX 4096
#define HISTORY_MAX 64
#define SEND_PIECE (16 * 1024)
#define CHUNKED_PIECE 64
#define DELAY_MAX_MS (10 * 60 * 1000)
#define HUGE_MAX (1024ull * 1024 * 1024)

/* Outcomes of the I/O helpers and of answering a request. Negative: the connection is over. */
enum {
    IO_OK = 0,
    IO_GONE = -1, /* the client closed or reset the connection */
    IO_STOP = -2, /* the server is stopping */
    IO_BAD = -3,  /* the client sent something malformed */
};
enum {
    ANSWER_KEEP = 0,  /* response sent; read the next request */
    ANSWER_CLOSE = 1, /* response sent; close */
    ANSWER_RESET = 2, /* close with an RST, no response */
};
/* Outcomes of reading a request. */
enum {
    READ_OK = 0,
    READ_IDLE_CLOSE = -1, /* the client closed between requests: nothing lost */
    READ_GONE = -2,       /* the client closed after sending a head: an aborted request */
    READ_STOP = -3,
    READ_BAD = -4, /* malformed or too large: answer with an error status and close */
};

typedef struct conn {
    e2e_upstream *server;
    int fd;
    pthread_t thread;
    bool done; /* under server->lock: the thread has finished and can be joined */
    char *buf; /* received bytes not yet consumed */
    size_t len, cap;
    struct conn *next;
} conn;

typedef struct recorded {
    char *target;
    char *text;
} recorded;

struct e2e_upstream {
    int listen_fd;
    int port;
    int wake[2]; /* stop writes one byte; a readable wake[0] tells every thread to finish */
    pthread_t acceptor;
    atomic_uint requests, connections, open_connections, aborted;
    pthread_mutex_t lock; /* guards conns and history */
    conn *conns;
    recorded history[HISTORY_MAX]; /* a ring; history_next is the oldest slot */
    size_t history_next;
};

typedef struct request {
    char *head; /* a NUL-terminated copy of the head, tokenised in place */
    const char *method, *target, *version;
    char *path;        /* the target's path, without the query */
    const char *query; /* the raw query without '?', or "" */
    const char *names[HEADERS_MAX], *values[HEADERS_MAX];
    size_t nheaders;
    char *body;
    size_t body_len;
    bool close; /* close after the response */
} request;

typedef struct strbuf {
    char *data;
    size_t len, cap;
} strbuf;

/* Test code: running out of memory is not a case worth handling gracefully. */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "e2e_upstream: out of memory\n");
        abort();
    }
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void sb_add(strbuf *sb, const void *data, size_t n)
{
    if (sb->cap - sb->len < n + 1) {
        size_t cap = sb->cap ? sb->cap * 2 : 256;
        while (cap - sb->len < n + 1)
            cap *= 2;
        sb->data = xrealloc(sb->data, cap);
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, data, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_adds(strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_add_json_string(strbuf *sb, const char *s, size_t n)
{
    sb_add(sb, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        switch (ch) {
        case '"':
            sb_add(sb, "\\\"", 2);
            break;
        case '\\':
            sb_add(sb, "\\\\", 2);
            break;
        case '\n':
            sb_add(sb, "\\n", 2);
            break;
        case '\r':
            sb_add(sb, "\\r", 2);
            break;
        case '\t':
            sb_add(sb, "\\t", 2);
            break;
        default:
            if (ch < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", ch);
                sb_adds(sb, esc);
            } else {
                sb_add(sb, &s[i], 1);
            }
        }
    }
    sb_add(sb, "\"", 1);
}

/* A strict JSON recogniser (RFC 8259 grammar, nesting bounded), enough to decide whether to embed a body as is. */
static const char *json_value(const char *p, const char *end, int depth);

static const char *json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static const char *json_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c != '\\')
            continue;
        if (++p >= end)
            return NULL;
        if (*p == 'u') {
            for (int i = 0; i < 4; i++)
                if (++p >= end || !is_hex(*p))
                    return NULL;
        } else if (memchr("\"\\/bfnrt", *p, 8) == NULL) {
            return NULL;
        }
    }
    return NULL;
}

static const char *json_digits(const char *p, const char *end)
{
    if (p >= end || !is_digit(*p))
        return NULL;
    while (p < end && is_digit(*p))
        p++;
    return p;
}

static const char *json_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if ((p = json_digits(p, end)) == NULL)
        return NULL;
    if (p < end && *p == '.' && (p = json_digits(p + 1, end)) == NULL)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if ((p = json_digits(p, end)) == NULL)
            return NULL;
    }
    return p;
}

static const char *json_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* Parses "open (item (',' item)*)? close" where item is a value or, for objects, "string ':' value". */
static const char *json_container(const char *p, const char *end, int depth, char close, bool object)
{
    p = json_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (object) {
            if (p >= end || *p != '"' || (p = json_string(p, end)) == NULL)
                return NULL;
            p = json_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p++;
        }
        if ((p = json_value(p, end, depth + 1)) == NULL)
            return NULL;
        p = json_ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = json_ws(p + 1, end);
    }
}

static const char *json_value(const char *p, const char *end, int depth)
{
    if (depth > 64)
        return NULL;
    p = json_ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{':
        return json_container(p, end, depth, '}', true);
    case '[':
        return json_container(p, end, depth, ']', false);
    case '"':
        return json_string(p, end);
    case 't':
        return json_literal(p, end, "true");
    case 'f':
        return json_literal(p, end, "false");
    case 'n':
        return json_literal(p, end, "null");
    default:
        return json_number(p, end);
    }
}

static bool is_json(const char *s, size_t n)
{
    const char *p = json_value(s, s + n, 0);
    return p != NULL && json_ws(p, s + n) == s + n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on the connection, or timeout_ms (-1: forever). Returns 1 (ready, or an error/hangup to
 * discover by the next recv/send), 0 (timeout) or IO_STOP. */
static int wait_fd(conn *c, short events, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = c->fd, .events = events}, {.fd = c->server->wake[0], .events = POLLIN}};
    for (;;) {
        int n = poll(p, 2, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents != 0)
            return IO_STOP;
        return n > 0 ? 1 : 0;
    }
}

static void reserve(conn *c, size_t want)
{
    if (c->cap - c->len >= want)
        return;
    size_t cap = c->cap ? c->cap : 16384;
    while (cap - c->len < want)
        cap *= 2;
    c->buf = xrealloc(c->buf, cap);
    c->cap = cap;
}

static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* One non-blocking recv into the buffer: >0 bytes read, 0 nothing yet (EAGAIN), IO_GONE. */
static int recv_some(conn *c)
{
    reserve(c, 16384);
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            return (int)n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return IO_GONE;
    }
}

/* Receives at least one more byte. Returns IO_OK, IO_GONE or IO_STOP. */
static int fill(conn *c)
{
    for (;;) {
        int r = recv_some(c);
        if (r != 0)
            return r > 0 ? IO_OK : r;
        if ((r = wait_fd(c, POLLIN, -1)) < 0)
            return r;
    }
}

static int send_all(conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(c, POLLOUT, -1);
            if (r < 0)
                return r;
            continue;
        }
        return IO_GONE; /* EPIPE, ECONNRESET: the client went away */
    }
    return IO_OK;
}

/* Waits ms milliseconds (-1: until the client goes or the server stops) while watching the connection: a
 * readable socket is read at once, so a close (recv returns 0) or reset is seen within the wait. Bytes the client
 * sends meanwhile (a pipelined request) stay buffered. Returns IO_OK when the time is up, IO_GONE or IO_STOP. */
static int sleep_watching(conn *c, long ms)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        long long left = ms < 0 ? -1 : deadline - now_ms();
        if (ms >= 0 && left <= 0)
            return IO_OK;
        int r = wait_fd(c, POLLIN, (int)left);
        if (r < 0)
            return r;
        if (r == 0)
            continue;
        if (c->len > HEAD_MAX + BODY_MAX)
            return IO_GONE; /* a client flooding a waiting connection: give up on it */
        if ((r = recv_some(c)) < 0)
            return r;
    }
}

/* The length of the head at the start of the buffer, terminator included, or 0 if it is not complete. */
static size_t head_length(const conn *c)
{
    for (size_t i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n')
            continue;
        if (i + 1 < c->len && c->buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < c->len && c->buf[i + 1] == '\r' && c->buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static void request_release(request *req)
{
    free(req->head);
    free(req->path);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

static const char *request_header(const request *req, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->names[i], name) == 0)
            found = req->values[i];
    return found;
}

/* Whether a comma-separated header value lists `token` (case-insensitive). */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && strncasecmp(p, token, n) == 0)
            return true;
        p = end;
    }
    return false;
}

static char *next_line(char **cursor)
{
    char *line = *cursor;
    char *nl = strchr(line, '\n');
    if (nl == NULL)
        return NULL;
    *nl = '\0';
    if (nl > line && nl[-1] == '\r')
        nl[-1] = '\0';
    *cursor = nl + 1;
    return line;
}

/* Tokenises the head (head_len bytes at the start of the buffer) into req. Returns 0 or an error status. */
static int parse_head(conn *c, size_t head_len, request *req)
{
    if (memchr(c->buf, '\0', head_len) != NULL)
        return 400;
    req->head = xstrndup(c->buf, head_len);
    char *cursor = req->head;
    char *line = next_line(&cursor);
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return 400;
    *sp1 = *sp2 = '\0';
    req->method = line;
    req->target = sp1 + 1;
    req->version = sp2 + 1;

    const char *path = req->target;
    if (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
        path = strchr(strstr(path, "//") + 2, '/');
        if (path == NULL)
            path = "/";
    }
    const char *q = strchr(path, '?');
    req->path = xstrndup(path, q ? (size_t)(q - path) : strlen(path));
    req->query = q ? q + 1 : "";

    while ((line = next_line(&cursor)) != NULL && *line != '\0') {
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || strcspn(line, " \t") < (size_t)(colon - line))
            return 400;
        if (req->nheaders == HEADERS_MAX)
            return 431;
        *colon = '\0';
        for (char *p = line; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        char *value = colon + 1;
        value += strspn(value, " \t");
        size_t vlen = strlen(value);
        while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
            value[--vlen] = '\0';
        req->names[req->nheaders] = line;
        req->values[req->nheaders] = value;
        req->nheaders++;
    }

    const char *connection = request_header(req, "connection");
    if (strcmp(req->version, "HTTP/1.0") == 0)
        req->close = true;
    if (connection != NULL && has_token(connection, "close"))
        req->close = true;
    return 0;
}

/* Finds the next line (a chunk-size line or a trailer) of a chunked body at the start of the buffer: *line_len
 * without its line end, *total with it. Returns IO_OK, IO_GONE, IO_STOP or IO_BAD (an overlong line). */
static int read_chunk_line(conn *c, size_t *line_len, size_t *total)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            *total = (size_t)(nl - c->buf) + 1;
            *line_len = *total - 1;
            if (*line_len > 0 && c->buf[*line_len - 1] == '\r')
                (*line_len)--;
            return IO_OK;
        }
        if (c->len > CHUNK_LINE_MAX)
            return IO_BAD;
        int r = fill(c);
        if (r < 0)
            return r;
    }
}

/* Reads a chunked body into req. Returns IO_OK, IO_GONE, IO_STOP or IO_BAD. */
static int read_chunked_body(conn *c, request *req)
{
    strbuf body = {0};
    size_t line_len, total;
    int r;
    for (;;) {
        if ((r = read_chunk_line(c, &line_len, &total)) < 0)
            goto fail;
        char *end;
        unsigned long long size = strtoull(c->buf, &end, 16);
        if (end == c->buf || !(*end == ';' || *end == '\r' || *end == '\n' || *end == ' ') ||
            size > BODY_MAX - body.len) {
            r = IO_BAD;
            goto fail;
        }
        consume(c, total);
        if (size == 0)
            break;
        while (c->len < size)
            if ((r = fill(c)) < 0)
                goto fail;
        sb_add(&body, c->buf, size);
        consume(c, size);
        if ((r = read_chunk_line(c, &line_len, &total)) < 0)
            goto fail;
        if (line_len != 0) {
            r = IO_BAD;
            goto fail;
        }
        consume(c, total);
    }
    do { /* trailers, up to the empty line */
        if ((r = read_chunk_line(c, &line_len, &total)) < 0)
            goto fail;
        consume(c, total);
    } while (line_len != 0);
    req->body = body.data;
    req->body_len = body.len;
    return IO_OK;

fail:
    free(body.data);
    return r;
}

/* Reads one request. On READ_BAD, *status is the error status to answer with. */
static int read_request(conn *c, request *req, int *status)
{
    e2e_upstream *u = c->server;
    size_t head_len;
    int r;
    memset(req, 0, sizeof(*req));
    for (;;) {
        while (c->len > 0 && (c->buf[0] == '\r' || c->buf[0] == '\n'))
            consume(c, 1); /* stray line ends between requests are allowed */
        if ((head_len = head_length(c)) != 0)
            break;
        if (c->len >= HEAD_MAX) {
            *status = 431;
            return READ_BAD;
        }
        if ((r = fill(c)) < 0)
            return r == IO_STOP ? READ_STOP : READ_IDLE_CLOSE;
    }
    if (head_len > HEAD_MAX) {
        *status = 431;
        return READ_BAD;
    }
    if ((*status = parse_head(c, head_len, req)) != 0) {
        request_release(req);
        return READ_BAD;
    }
    consume(c, head_len);
    atomic_fetch_add(&u->requests, 1);

    const char *te = request_header(req, "transfer-encoding");
    const char *cl = request_header(req, "content-length");
    const char *expect = request_header(req, "expect");
    bool chunked = te != NULL && has_token(te, "chunked");
    unsigned long long length = 0;
    if (!chunked && cl != NULL) {
        char *end;
        length = strtoull(cl, &end, 10);
        if (end == cl || *end != '\0' || cl[0] == '-' || length > BODY_MAX) {
            *status = length > BODY_MAX ? 413 : 400;
            request_release(req);
            return READ_BAD;
        }
    }
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && (chunked || c->len < length)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if ((r = send_all(c, cont, sizeof(cont) - 1)) < 0)
            goto fail;
    }
    if (chunked) {
        if ((r = read_chunked_body(c, req)) < 0)
            goto fail;
    } else {
        while (c->len < length)
            if ((r = fill(c)) < 0)
                goto fail;
        req->body = xstrndup(c->buf, length);
        req->body_len = length;
        consume(c, length);
    }
    return READ_OK;

fail:
    request_release(req);
    if (r == IO_BAD) {
        *status = 400;
        return READ_BAD;
    }
    return r == IO_STOP ? READ_STOP : READ_GONE;
}

static void record(e2e_upstream *u, const request *req)
{
    strbuf sb = {0};
    sb_adds(&sb, req->method);
    sb_add(&sb, " ", 1);
    sb_adds(&sb, req->target);
    sb_add(&sb, "\n", 1);
    for (size_t i = 0; i < req->nheaders; i++) {
        sb_adds(&sb, req->names[i]);
        sb_add(&sb, ": ", 2);
        sb_adds(&sb, req->values[i]);
        sb_add(&sb, "\n", 1);
    }
    sb_add(&sb, "\n", 1);
    sb_add(&sb, req->body ? req->body : "", req->body_len);

    pthread_mutex_lock(&u->lock);
    recorded *slot = &u->history[u->history_next];
    free(slot->target);
    free(slot->text);
    slot->target = xstrndup(req->target, strlen(req->target));
    slot->text = sb.data;
    u->history_next = (u->history_next + 1) % HISTORY_MAX;
    pthread_mutex_unlock(&u->lock);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* Sends a complete Content-Length response; returns ANSWER_KEEP, ANSWER_CLOSE or a negative IO_ code. */
static int send_response(conn *c, const request *req, int status, const char *type, const char *body, size_t len,
                         bool close)
{
    close = close || req == NULL || req->close;
    bool bodyless = status == 204 || status == 304;
    bool head_only = bodyless || (req != NULL && strcmp(req->method, "HEAD") == 0);
    strbuf sb = {0};
    char line[256];
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
    sb_adds(&sb, line);
    if (!bodyless) {
        snprintf(line, sizeof(line), "Content-Type: %s\r\nContent-Length: %zu\r\n", type, len);
        sb_adds(&sb, line);
    }
    if (close)
        sb_adds(&sb, "Connection: close\r\n");
    sb_add(&sb, "\r\n", 2);
    if (!head_only)
        sb_add(&sb, body, len);
    int r = send_all(c, sb.data, sb.len);
    free(sb.data);
    if (r < 0)
        return r;
    return close ? ANSWER_CLOSE : ANSWER_KEEP;
}

static int send_json(conn *c, const request *req, int status, const strbuf *body, bool close)
{
    return send_response(c, req, status, "application/json", body->data, body->len, close);
}

static int answer_echo(conn *c, const request *req, bool close)
{
    strbuf sb = {0};
    sb_adds(&sb, "{\"path\": ");
    sb_add_json_string(&sb, req->path, strlen(req->path));
    sb_adds(&sb, ", \"method\": ");
    sb_add_json_string(&sb, req->method, strlen(req->method));
    sb_adds(&sb, ", \"query\": ");
    sb_add_json_string(&sb, req->query, strlen(req->query));
    sb_adds(&sb, ", \"body\": ");
    if (req->body_len == 0)
        sb_adds(&sb, "null");
    else if (is_json(req->body, req->body_len))
        sb_add(&sb, req->body, req->body_len);
    else
        sb_add_json_string(&sb, req->body, req->body_len);
    sb_adds(&sb, "}");
    int r = send_json(c, req, 200, &sb, close);
    free(sb.data);
    return r;
}

static int answer_status(conn *c, const request *req, const char *arg)
{
    char *end;
    long status = strtol(arg, &end, 10);
    strbuf sb = {0};
    char text[64];
    if (end == arg || *end != '\0' || status < 200 || status > 599) {
        sb_adds(&sb, "{\"error\": \"the status must be 200..599\"}");
        status = 400;
    } else {
        snprintf(text, sizeof(text), "{\"status\": %ld}", status);
        sb_adds(&sb, text);
    }
    int r = send_json(c, req, (int)status, &sb, false);
    free(sb.data);
    return r;
}

static int answer_huge(conn *c, const request *req, const char *arg)
{
    unsigned long long size = strtoull(arg, NULL, 10);
    if (size > HUGE_MAX)
        size = HUGE_MAX;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %llu\r\n%s\r\n", size,
                     req->close ? "Connection: close\r\n" : "");
    int r = send_all(c, head, (size_t)n);
    if (r < 0 || strcmp(req->method, "HEAD") == 0)
        return r < 0 ? r : req->close ? ANSWER_CLOSE : ANSWER_KEEP;
    char *piece = xrealloc(NULL, SEND_PIECE);
    for (unsigned long long off = 0; off < size && r >= 0; off += SEND_PIECE) {
        size_t len = size - off < SEND_PIECE ? (size_t)(size - off) : SEND_PIECE;
        memset(piece, 'x', len);
        if (off == 0)
            piece[0] = '"';
        if (off + len == size)
            piece[len - 1] = '"';
        r = send_all(c, piece, len);
    }
    free(piece);
    if (r < 0)
        return r;
    return req->close ? ANSWER_CLOSE : ANSWER_KEEP;
}

static int answer_drip(conn *c, const request *req, const char *arg)
{
    static const char body[] = "\"12345678\"";
    long ms = strtol(arg, NULL, 10);
    if (ms < 0 || ms > DELAY_MAX_MS)
        ms = 0;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n%s\r\n",
                     req->close ? "Connection: close\r\n" : "");
    int r = send_all(c, head, (size_t)n);
    for (size_t i = 0; i < sizeof(body) - 1 && r >= 0; i++) {
        if ((r = sleep_watching(c, ms)) >= 0)
            r = send_all(c, &body[i], 1);
    }
    if (r < 0)
        return r;
    return req->close ? ANSWER_CLOSE : ANSWER_KEEP;
}

static int answer_chunked(conn *c, const request *req, const char *arg)
{
    long count = strtol(arg, NULL, 10);
    if (count < 0)
        count = 0;
    strbuf json = {0};
    char num[32];
    sb_add(&json, "[", 1);
    for (long i = 0; i < count; i++) {
        snprintf(num, sizeof(num), i ? ",%ld" : "%ld", i);
        sb_adds(&json, num);
    }
    sb_add(&json, "]", 1);

    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n%s\r\n",
                     req->close ? "Connection: close\r\n" : "");
    int r = send_all(c, head, (size_t)n);
    /* One send per chunk (TCP_NODELAY is on), pieces cut anywhere in the JSON: the client must reassemble. */
    strbuf chunk = {0};
    for (size_t off = 0; off < json.len && r >= 0; off += CHUNKED_PIECE) {
        size_t len = json.len - off < CHUNKED_PIECE ? json.len - off : CHUNKED_PIECE;
        char size_line[32];
        snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
        chunk.len = 0;
        sb_adds(&chunk, size_line);
        sb_add(&chunk, json.data + off, len);
        sb_add(&chunk, "\r\n", 2);
        r = send_all(c, chunk.data, chunk.len);
    }
    if (r >= 0)
        r = send_all(c, "0\r\n\r\n", 5);
    free(chunk.data);
    free(json.data);
    if (r < 0)
        return r;
    return req->close ? ANSWER_CLOSE : ANSWER_KEEP;
}

/* The part of path after prefix if path is prefix or prefix + "/...", else NULL. */
static const char *route(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return NULL;
    if (path[n] == '\0')
        return path + n;
    return path[n] == '/' ? path + n + 1 : NULL;
}

/* Returns ANSWER_KEEP, ANSWER_CLOSE, ANSWER_RESET or a negative IO_ code. */
static int answer(conn *c, const request *req)
{
    const char *path = req->path;
    const char *arg;
    strbuf sb = {0};
    int r;
    if (route(path, "/json") != NULL)
        return answer_echo(c, req, false);
    if (route(path, "/close") != NULL)
        return answer_echo(c, req, true);
    if ((arg = route(path, "/delay")) != NULL) {
        long ms = strtol(arg, NULL, 10);
        if ((r = sleep_watching(c, ms < 0 || ms > DELAY_MAX_MS ? 0 : ms)) < 0)
            return r;
        return answer_echo(c, req, false);
    }
    if ((arg = route(path, "/status")) != NULL)
        return answer_status(c, req, arg);
    if (route(path, "/invalid") != NULL)
        return send_response(c, req, 200, "application/json", "{\"oops\": ", 9, false);
    if (route(path, "/text") != NULL)
        return send_response(c, req, 200, "text/plain", "hello", 5, false);
    if ((arg = route(path, "/huge")) != NULL)
        return answer_huge(c, req, arg);
    if (route(path, "/reset") != NULL)
        return ANSWER_RESET;
    if (route(path, "/hang") != NULL)
        return sleep_watching(c, -1);
    if ((arg = route(path, "/drip")) != NULL)
        return answer_drip(c, req, arg);
    if ((arg = route(path, "/chunked")) != NULL)
        return answer_chunked(c, req, arg);
    sb_adds(&sb, "{\"error\": \"not found\", \"path\": ");
    sb_add_json_string(&sb, path, strlen(path));
    sb_adds(&sb, "}");
    r = send_json(c, req, 404, &sb, false);
    free(sb.data);
    return r;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    e2e_upstream *u = c->server;
    bool reset = false, aborted = false;
    for (;;) {
        request req;
        int status = 0;
        int r = read_request(c, &req, &status);
        aborted = r == READ_GONE;
        if (r == READ_BAD) {
            strbuf sb = {0};
            sb_adds(&sb, "{\"error\": \"bad request\"}");
            send_json(c, NULL, status, &sb, true);
            free(sb.data);
        }
        if (r != READ_OK)
            break;
        record(u, &req);
        r = answer(c, &req);
        request_release(&req);
        aborted = r == IO_GONE;
        if (r != ANSWER_KEEP) {
            reset = r == ANSWER_RESET;
            break;
        }
    }
    if (reset) {
        struct linger linger = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    }
    close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    /* Closed first, counted after: a test that saw `aborted` go up also sees the connection gone. */
    atomic_fetch_sub(&u->open_connections, 1);
    if (aborted)
        atomic_fetch_add(&u->aborted, 1);
    pthread_mutex_lock(&u->lock);
    c->done = true;
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* Joins the connection threads that have finished (all of them if `all`, the server then being stopped). */
static void reap(e2e_upstream *u, bool all)
{
    conn *finished = NULL;
    pthread_mutex_lock(&u->lock);
    for (conn **pp = &u->conns; *pp != NULL;) {
        conn *c = *pp;
        if (all || c->done) {
            *pp = c->next;
            c->next = finished;
            finished = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&u->lock);
    while (finished != NULL) {
        conn *c = finished;
        finished = c->next;
        pthread_join(c->thread, NULL);
        free(c);
    }
}

static void *accept_main(void *arg)
{
    e2e_upstream *u = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = u->listen_fd, .events = POLLIN}, {.fd = u->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents != 0)
            break;
        reap(u, false);
        int fd = accept4(u->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *c = xrealloc(NULL, sizeof(*c));
        memset(c, 0, sizeof(*c));
        c->server = u;
        c->fd = fd;
        atomic_fetch_add(&u->connections, 1);
        atomic_fetch_add(&u->open_connections, 1);
        pthread_mutex_lock(&u->lock);
        int err = pthread_create(&c->thread, NULL, conn_main, c);
        if (err == 0) {
            c->next = u->conns;
            u->conns = c;
        }
        pthread_mutex_unlock(&u->lock);
        if (err != 0) {
            fprintf(stderr, "e2e_upstream: pthread_create: %s\n", strerror(err));
            close(fd);
            atomic_fetch_sub(&u->open_connections, 1);
            free(c);
        }
    }
    return NULL;
}

e2e_upstream *e2e_upstream_start(void)
{
    e2e_upstream *u = xrealloc(NULL, sizeof(*u));
    memset(u, 0, sizeof(*u));
    u->listen_fd = u->wake[0] = u->wake[1] = -1;
    pthread_mutex_init(&u->lock, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    const char *what;
    int one = 1, err;

    what = "pipe2";
    if (pipe2(u->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    what = "socket";
    if ((u->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        goto fail;
    setsockopt(u->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    what = "bind";
    if (bind(u->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        goto fail;
    what = "listen";
    if (listen(u->listen_fd, 128) != 0)
        goto fail;
    what = "getsockname";
    if (getsockname(u->listen_fd, (struct sockaddr *)&addr, &addr_len) != 0)
        goto fail;
    u->port = ntohs(addr.sin_port);
    if ((err = pthread_create(&u->acceptor, NULL, accept_main, u)) != 0) {
        errno = err;
        what = "pthread_create";
        goto fail;
    }
    return u;

fail:
    fprintf(stderr, "e2e_upstream: %s: %s\n", what, strerror(errno));
    if (u->listen_fd >= 0)
        close(u->listen_fd);
    if (u->wake[0] >= 0) {
        close(u->wake[0]);
        close(u->wake[1]);
    }
    pthread_mutex_destroy(&u->lock);
    free(u);
    return NULL;
}

int e2e_upstream_port(const e2e_upstream *u)
{
    return u->port;
}

void e2e_upstream_stop(e2e_upstream *u)
{
    if (u == NULL)
        return;
    char byte = 1;
    while (write(u->wake[1], &byte, 1) < 0 && errno == EINTR)
        ;
    pthread_join(u->acceptor, NULL);
    reap(u, true);
    close(u->listen_fd);
    close(u->wake[0]);
    close(u->wake[1]);
    for (size_t i = 0; i < HISTORY_MAX; i++) {
        free(u->history[i].target);
        free(u->history[i].text);
    }
    pthread_mutex_destroy(&u->lock);
    free(u);
}

unsigned e2e_upstream_requests(const e2e_upstream *u)
{
    return atomic_load(&u->requests);
}

unsigned e2e_upstream_connections(const e2e_upstream *u)
{
    return atomic_load(&u->connections);
}

unsigned e2e_upstream_open_connections(const e2e_upstream *u)
{
    return atomic_load(&u->open_connections);
}

unsigned e2e_upstream_aborted(const e2e_upstream *u)
{
    return atomic_load(&u->aborted);
}

unsigned e2e_upstream_wait(const e2e_upstream *u, unsigned (*counter)(const e2e_upstream *), unsigned at_least,
                           int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    unsigned value;
    while ((value = counter(u)) < at_least && now_ms() < deadline) {
        struct timespec ts = {.tv_nsec = 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return value;
}

char *e2e_upstream_last_request(e2e_upstream *u, const char *path_prefix)
{
    size_t n = strlen(path_prefix);
    char *found = NULL;
    pthread_mutex_lock(&u->lock);
    for (size_t i = 1; i <= HISTORY_MAX && found == NULL; i++) {
        const recorded *r = &u->history[(u->history_next + HISTORY_MAX - i) % HISTORY_MAX];
        if (r->text != NULL && strncmp(r->target, path_prefix, n) == 0)
            found = xstrndup(r->text, strlen(r->text));
    }
    pthread_mutex_unlock(&u->lock);
    return found;
}
