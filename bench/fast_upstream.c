/* fast_upstream: an event-driven HTTP/1.1 upstream for benchmarks, so that the upstream is not what a fan-out
 * benchmark measures. One thread, epoll, keep-alive, requests on a connection answered in order.
 *
 *   GET|POST /json/...           {"path": ..., "method": ..., "query": ..., "body": null}
 *   GET|POST /delay/<ms>/...     the same after <ms> milliseconds (0..60000), without holding the thread
 *   anything else                404
 *
 * Prints its port, then serves until SIGTERM or SIGINT; then prints its request and connection counts to stderr.
 * The e2e test upstream (tests/e2e/upstream.c) has many more behaviours but a thread per connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP 16384
#define OUT_CAP 65536
#define DELAY_MAX_MS 60000

typedef struct conn {
    int fd;
    size_t in_len, out_len, out_off;
    int waiting; /* a delayed answer is due: nothing more is parsed until it is sent */
    char in[IN_CAP];
    char out[OUT_CAP];
} conn;

/* A delayed answer: the request's echo is rendered into the connection when its time comes. */
typedef struct pending {
    uint64_t due_ns;
    int fd;
    unsigned gen; /* the connection's generation: a closed and reused descriptor drops it */
    char echo[1024];
    size_t echo_len;
} pending;

static volatile sig_atomic_t stopping;
static unsigned long long nrequests, nconnections;
static pending *heap;
static size_t heap_len, heap_cap;
static unsigned *gens; /* per descriptor, bumped when its connection closes */
static conn **conns;   /* per descriptor */
static size_t gens_cap;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void heap_push(const pending *p)
{
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, heap_cap * sizeof(*heap));
        if (heap == NULL)
            abort();
    }
    size_t i = heap_len++;
    while (i > 0 && heap[(i - 1) / 2].due_ns > p->due_ns) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = *p;
}

static void heap_pop(pending *out)
{
    *out = heap[0];
    pending last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < heap_len && heap[l].due_ns < last.due_ns)
            m = l;
        if (l + 1 < heap_len && heap[l + 1].due_ns < (m == i ? last.due_ns : heap[m].due_ns))
            m = l + 1;
        if (m == i)
            break;
        heap[i] = heap[m];
        i = m;
    }
    if (heap_len > 0)
        heap[i] = last;
}

static size_t json_string(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    if (o < cap)
        dst[o++] = '"';
    for (size_t i = 0; i < n && o + 7 < cap; ++i) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    if (o < cap)
        dst[o++] = '"';
    return o;
}

static void conn_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    ++gens[c->fd];
    conns[c->fd] = NULL;
    close(c->fd);
    free(c);
}

/* Sends what is queued; returns -1 when the connection is gone. */
static int conn_flush(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return 0; /* the rest on EPOLLOUT */
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return 0;
}

static int queue_answer(conn *c, int status, const char *body, size_t len)
{
    if (c->out_len + len + 128 > OUT_CAP)
        return -1;
    c->out_len += (size_t)snprintf(c->out + c->out_len, OUT_CAP - c->out_len,
                                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                                   status, status == 200 ? "OK" : "Not Found", len);
    memcpy(c->out + c->out_len, body, len);
    c->out_len += len;
    return 0;
}

/* Parses and answers the complete requests buffered on c. Returns -1 to close. */
static int conn_serve(conn *c)
{
    size_t off = 0;
    while (!c->waiting) {
        char *head = c->in + off;
        size_t avail = c->in_len - off;
        char *end = memmem(head, avail, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t head_len = (size_t)(end - head) + 4, body_len = 0;
        for (char *p = memmem(head, head_len, "\r\n", 2); p != NULL && p + 2 < end;
             p = memmem(p + 2, (size_t)(end - p), "\r\n", 2)) {
            if (strncasecmp(p + 2, "content-length:", 15) == 0)
                body_len = strtoul(p + 17, NULL, 10);
        }
        if (body_len > IN_CAP / 2)
            return -1;
        if (avail < head_len + body_len)
            break;
        char *sp1 = memchr(head, ' ', head_len), *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
        if (sp1 == NULL || sp2 == NULL)
            return -1;
        const char *target = sp1 + 1, *q = memchr(target, '?', (size_t)(sp2 - target));
        size_t path_len = (size_t)((q != NULL ? q : sp2) - target);
        ++nrequests;
        char echo[1024];
        size_t n = 0;
        n += (size_t)snprintf(echo + n, sizeof(echo) - n, "{\"path\": ");
        n += json_string(echo + n, sizeof(echo) - n - 64, target, path_len);
        n += (size_t)snprintf(echo + n, sizeof(echo) - n, ", \"method\": ");
        n += json_string(echo + n, sizeof(echo) - n - 64, head, (size_t)(sp1 - head));
        n += (size_t)snprintf(echo + n, sizeof(echo) - n, ", \"query\": ");
        n +=
            json_string(echo + n, sizeof(echo) - n - 64, q != NULL ? q + 1 : "", q != NULL ? (size_t)(sp2 - q - 1) : 0);
        n += (size_t)snprintf(echo + n, sizeof(echo) - n, ", \"body\": null}");
        off += head_len + body_len;
        if (path_len >= 7 && memcmp(target, "/delay/", 7) == 0) {
            long ms = strtol(target + 7, NULL, 10);
            pending p = {.due_ns = now_ns() + (uint64_t)(ms < 0 || ms > DELAY_MAX_MS ? 0 : ms) * 1000000ull,
                         .fd = c->fd,
                         .gen = gens[c->fd],
                         .echo_len = n};
            memcpy(p.echo, echo, n);
            heap_push(&p);
            c->waiting = 1;
        } else if ((path_len == 5 || (path_len > 5 && target[5] == '/')) && memcmp(target, "/json", 5) == 0) {
            if (queue_answer(c, 200, echo, n) != 0)
                return -1;
        } else if (queue_answer(c, 404, "{\"error\": \"not found\"}", 22) != 0) {
            return -1;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return conn_flush(c);
}

static void on_readable(int ep, conn *c)
{
    for (;;) {
        if (c->in_len == IN_CAP) {
            conn_close(ep, c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(ep, c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        c->in_len += (size_t)n;
    }
    if (conn_serve(c) != 0)
        conn_close(ep, c);
}

static void fire_due(int ep)
{
    uint64_t now = now_ns();
    while (heap_len > 0 && heap[0].due_ns <= now) {
        pending p;
        heap_pop(&p);
        conn *c = conns[p.fd];
        if (c == NULL || gens[p.fd] != p.gen)
            continue; /* the connection closed meanwhile */
        c->waiting = 0;
        if (queue_answer(c, 200, p.echo, p.echo_len) != 0 || conn_serve(c) != 0)
            conn_close(ep, c);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &slen) != 0) {
        perror("fast_upstream: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("%d\n", ntohs(sin.sin_port));
    fflush(stdout);
    struct epoll_event events[256];
    while (!stopping) {
        int timeout = -1;
        if (heap_len > 0) {
            uint64_t now = now_ns();
            timeout = heap[0].due_ns <= now ? 0 : (int)((heap[0].due_ns - now + 999999) / 1000000);
        }
        int n = epoll_wait(ep, events, 256, timeout);
        for (int i = 0; i < n; ++i) {
            conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    if ((size_t)fd >= gens_cap) {
                        size_t cap = (size_t)fd * 2 + 64;
                        gens = realloc(gens, cap * sizeof(*gens));
                        conns = realloc(conns, cap * sizeof(*conns));
                        if (gens == NULL || conns == NULL)
                            abort();
                        memset(gens + gens_cap, 0, (cap - gens_cap) * sizeof(*gens));
                        memset(conns + gens_cap, 0, (cap - gens_cap) * sizeof(*conns));
                        gens_cap = cap;
                    }
                    conn *nc = calloc(1, sizeof(*nc));
                    if (nc == NULL)
                        abort();
                    nc->fd = fd;
                    conns[fd] = nc;
                    ++nconnections;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                conn_close(ep, c);
                continue;
            }
            if (events[i].events & EPOLLOUT && conn_flush(c) != 0) {
                conn_close(ep, c);
                continue;
            }
            if (events[i].events & EPOLLIN)
                on_readable(ep, c);
        }
        fire_due(ep);
    }
    fprintf(stderr, "fast_upstream: %llu requests on %llu connections\n", nrequests, nconnections);
    return 0;
}
