/* loadgen: a closed-loop HTTP/1.1 load generator that reports latency per status code (wrk mixes them). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: loadgen PORT PATH CONNECTIONS SECONDS [RATE]
 * Closed loop (no RATE): each connection sends one request, waits for the whole response (Content-Length
 * bodies only), records the latency under its status code, and sends the next.
 * Fixed rate (RATE requests per second over all connections): request k is due at start + k / RATE and
 * goes out on an idle connection; its latency counts from when it was due, not from when it was sent, so
 * a server that falls behind is charged for the queue it causes (no coordinated omission). Requests due
 * while every connection is busy wait for one.
 * Prints one line per status:
 *   status=200 count=1234 rps=246.8 p50_us=812 p99_us=2210 p999_us=3100
 */

#define MAX_CONNS 1024
#define MAX_SAMPLES 4000000

typedef struct conn {
    int fd;
    int busy; /* a request is out on it */
    uint64_t sent_ns;
    char buf[16384];
    size_t len;
} conn;

typedef struct series {
    int status;
    uint32_t *us;
    size_t n;
} series;

static series stats[16];
static size_t nstats;
static char request[512];
static size_t request_len;
static struct sockaddr_in target;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void record(int status, uint64_t ns)
{
    series *s = NULL;
    for (size_t i = 0; i < nstats; ++i) {
        if (stats[i].status == status)
            s = &stats[i];
    }
    if (s == NULL && nstats < 16) {
        s = &stats[nstats++];
        s->status = status;
        s->us = malloc(MAX_SAMPLES * sizeof(uint32_t));
    }
    if (s != NULL && s->n < MAX_SAMPLES)
        s->us[s->n++] = (uint32_t)(ns / 1000);
}

static int send_request(conn *c, uint64_t due_ns)
{
    c->busy = 1;
    c->sent_ns = due_ns;
    return write(c->fd, request, request_len) == (ssize_t)request_len ? 0 : -1;
}

/* Connects; in the closed loop also sends the first request. */
static int open_conn(conn *c, int ep, int send_first)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) != 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->len = 0;
    c->busy = 0;
    return send_first ? send_request(c, now_ns()) : 0;
}

/* Returns the response length when buf holds a whole response, else 0. */
static size_t complete_response(const conn *c, int *status)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    size_t body = 0;
    const char *cl = memmem(c->buf, head, "ontent-Length:", 14);
    if (cl == NULL)
        cl = memmem(c->buf, head, "ontent-length:", 14);
    if (cl != NULL)
        body = strtoul(cl + 14, NULL, 10);
    if (c->len < head + body)
        return 0;
    *status = atoi(c->buf + 9);
    return head + body;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: loadgen PORT PATH CONNECTIONS SECONDS [RATE]\n");
        return 2;
    }
    int port = atoi(argv[1]), nconns = atoi(argv[3]);
    double seconds = atof(argv[4]);
    double rate = argc == 6 ? atof(argv[5]) : 0;
    if (nconns < 1 || nconns > MAX_CONNS || (argc == 6 && rate <= 0))
        return 2;
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    request_len = (size_t)snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[2]);

    int ep = epoll_create1(0);
    conn *conns = calloc((size_t)nconns, sizeof(conn));
    conn **idle = calloc((size_t)nconns, sizeof(conn *));
    size_t nidle = 0;
    for (int i = 0; i < nconns; ++i) {
        if (open_conn(&conns[i], ep, rate == 0) != 0) {
            perror("connect");
            return 1;
        }
        if (rate > 0)
            idle[nidle++] = &conns[i];
    }
    uint64_t start = now_ns(), stop = start + (uint64_t)(seconds * 1e9);
    uint64_t interval = rate > 0 ? (uint64_t)(1e9 / rate) : 0, next_due = start, issued = 0;
    size_t errors = 0, nlate = 0;
    uint32_t *late = rate > 0 ? malloc(MAX_SAMPLES * sizeof(uint32_t)) : NULL; /* send time - due time */
    struct epoll_event events[64];
    for (uint64_t now = start; now < stop; now = now_ns()) {
        int n;
        if (rate > 0) {
            /* Due requests go out on idle connections. */
            while (nidle > 0 && next_due <= now && next_due < stop) {
                if (send_request(idle[--nidle], next_due) != 0)
                    ++errors;
                late[nlate < MAX_SAMPLES ? nlate++ : nlate - 1] = (uint32_t)((now - next_due) / 1000);
                next_due = start + ++issued * interval;
            }
            /* With a connection idle, poll without sleeping: a timer wake-up in a VM can be late by
             * milliseconds, and that lateness would be charged to the server. The generator has its own
             * core. */
            n = epoll_wait(ep, events, 64, nidle > 0 ? 0 : 100);
        } else {
            n = epoll_wait(ep, events, 64, 100);
        }
        for (int i = 0; i < n; ++i) {
            conn *c = events[i].data.ptr;
            ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
            if (got <= 0) {
                ++errors;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                int was_busy = c->busy; /* an idle one closed by the server is on the idle list already */
                if (open_conn(c, ep, rate == 0) == 0 && rate > 0 && was_busy)
                    idle[nidle++] = c;
                continue;
            }
            c->len += (size_t)got;
            int status;
            size_t used = complete_response(c, &status);
            if (used == 0)
                continue;
            uint64_t t = now_ns();
            record(status, t - c->sent_ns);
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            c->busy = 0;
            if (rate > 0)
                idle[nidle++] = c;
            else if (send_request(c, t) != 0)
                ++errors;
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    for (size_t i = 0; i < nstats; ++i) {
        series *s = &stats[i];
        qsort(s->us, s->n, sizeof(uint32_t), cmp_u32);
        printf("status=%d count=%zu rps=%.1f p50_us=%u p99_us=%u p999_us=%u\n", s->status, s->n, (double)s->n / elapsed,
               s->us[s->n / 2], s->us[(size_t)((double)s->n * 0.99)], s->us[(size_t)((double)s->n * 0.999)]);
    }
    if (nlate > 0) {
        qsort(late, nlate, sizeof(uint32_t), cmp_u32);
        printf("sent_late p50_us=%u p99_us=%u (requests due while every connection was busy wait)\n", late[nlate / 2],
               late[(size_t)((double)nlate * 0.99)]);
    }
    free(late);
    if (errors > 0)
        printf("errors=%zu\n", errors);
    for (size_t i = 0; i < nstats; ++i)
        free(stats[i].us);
    for (int i = 0; i < nconns; ++i)
        close(conns[i].fd);
    free(idle);
    free(conns);
    close(ep);
    return 0;
}
