/* upstream_main: the e2e test upstream as a standalone server for benchmarks (/delay/<ms>/..., /json/...).
 * Prints its port, then serves until stdin closes or SIGTERM. Run: ./bench_upstream */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "tests/e2e/upstream.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(void)
{
    e2e_upstream *up = e2e_upstream_start();
    if (up == NULL) {
        fprintf(stderr, "bench_upstream: cannot start\n");
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("%d\n", e2e_upstream_port(up));
    fflush(stdout);
    while (!stop)
        pause();
    fprintf(stderr, "bench_upstream: %u requests on %u connections\n", e2e_upstream_requests(up),
            e2e_upstream_connections(up));
    e2e_upstream_stop(up);
    return 0;
}
