/* overload: the process-wide marks past which new requests are refused with 503 at once (server.overload).
 *
 * Two marks, each off when 0:
 * - max_inflight: routed requests being handled (admitted, queued or running). Each worker counts its own,
 *   lock-free, against its share, ceil(max_inflight / threads), as connection shares are split.
 * - max_memory_mb: the process's resident set size, sampled every 100 ms by the main thread. Once over the
 *   mark, requests are refused until it falls below 95% of it (memory given back to the system lags).
 * A refused request gets 503, Retry-After and a JSON body naming the mark; requests already admitted keep
 * running. Only routed requests are refused: 404s, preflights and the admin listener are answered as usual
 * (/readyz says 503 while memory is over its mark, so that a load balancer moves traffic elsewhere).
 */
#ifndef GW_OVERLOAD_H
#define GW_OVERLOAD_H
#include <stdint.h>

#include "gw_config.h"

struct gw_worker;

/* At startup, before the workers start (threads: how many workers share max_inflight). */
void gw_overload_configure(const gw_overload_config *cfg, unsigned threads);
/* After a reload: the new marks apply to the next requests. Any thread. */
void gw_overload_reconfigure(const gw_overload_config *cfg);
/* Main thread, every 100 ms: reads the resident set size and moves the memory mark's state (logged on each change). */
void gw_overload_sample(void);
/* Worker thread, per routed request: NULL, or the name of the mark that refuses it ("max_inflight",
 * "max_memory_mb"). Counts the refusal. */
const char *gw_overload_check(const struct gw_worker *w);
/* The Retry-After the refusals carry, in seconds. */
unsigned gw_overload_retry_after_s(void);
/* Whether memory is over its mark now (any thread). */
int gw_overload_memory_over(void);
/* Refusals so far, by mark (any thread; for the metrics). */
uint64_t gw_overload_refused(int memory);

#endif
