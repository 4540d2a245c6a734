/* reload_latency: time from writing a function file to the new version answering (debounce included). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Usage: reload_latency PORT PATH FUNCTION_FILE ROUNDS
 * Each round writes FUNCTION_FILE (to a temporary name, then renamed) with a new marker, then asks
 * PATH on one keep-alive connection until the answer carries the marker. */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One request; returns the body in buf (NUL-terminated) or -1. */
static int get(int fd, const char *path, char *buf, size_t cap)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got <= 0)
            return -1;
        len += (size_t)got;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "content-length:");
        if (end != NULL && cl != NULL && len >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
            return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int port = atoi(argv[1]), rounds = atoi(argv[4]);
    const char *path = argv[2], *file = argv[3];
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        return 1;
    }
    uint64_t *ns = calloc((size_t)rounds, sizeof(uint64_t));
    static char buf[65536];
    for (int i = 0; i < rounds; ++i) {
        char marker[64], tmp[4096];
        snprintf(marker, sizeof(marker), "release-%d-%ld", i, (long)getpid());
        snprintf(tmp, sizeof(tmp), "%s.tmp", file);
        FILE *f = fopen(tmp, "w");
        fprintf(f, "return { handler = function(event, ctx) return { release = '%s' } end }\n", marker);
        fclose(f);
        uint64_t t0 = now_ns();
        rename(tmp, file);
        do {
            if (get(fd, path, buf, sizeof(buf)) != 0)
                return 1;
        } while (strstr(buf, marker) == NULL);
        ns[i] = now_ns() - t0;
        usleep(100000); /* let the reloader settle before the next change */
    }
    qsort(ns, (size_t)rounds, sizeof(uint64_t), cmp_u64);
    printf("file write -> new version serving (%d rounds): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", rounds,
           (double)ns[rounds / 2] / 1e6, (double)ns[rounds * 99 / 100] / 1e6, (double)ns[rounds - 1] / 1e6);
    return 0;
}
