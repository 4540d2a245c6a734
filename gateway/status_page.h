/* status_page: the HTML status page the admin listener serves at GET /. */
#ifndef GW_STATUS_PAGE_H
#define GW_STATUS_PAGE_H

#include <stddef.h>

/*
 * One self-contained HTML document (inline CSS and JavaScript; no external assets, only relative
 * URLs of the admin API). In the browser it polls /admin/status and /admin/stats every 2 s (and
 * /admin/routes when the config version changes), computes per-route request and error rates and
 * p50/p99 from the deltas of the histogram buckets, and draws each route's p99 of the last 5 minutes.
 * Constant, NUL-terminated; gw_status_page_html_len excludes the NUL.
 */
extern const char gw_status_page_html[];
extern const size_t gw_status_page_html_len;

#endif
