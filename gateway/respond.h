/* respond: writing responses: function responses, JSON errors, reason phrases. */
#ifndef GW_RESPOND_H
#define GW_RESPOND_H

#include <h2o.h>

#include "../functions/fn.h"

/* All of these run on the request's worker thread and finish the h2o request (h2o copies the body). */

/* Sends status and body with a Content-Length. */
void gw_respond(h2o_req_t *req, int status, const char *body, size_t len);
/* Sends {"error": message, "requestId": id} (plus "limit": limit when limit is not NULL) as JSON. */
void gw_send_error(h2o_req_t *req, int status, const char *message, const char *limit, h2o_iovec_t id);
/* Sends what a function answered; hop-by-hop headers are dropped, bodies of 1xx/204/304 too. With
 * `gateway_cors`, the gateway owns the CORS headers and the function's own Access-Control-* headers are
 * dropped as well (a second Access-Control-Allow-Origin makes browsers refuse the response). */
void gw_send_function_response(h2o_req_t *req, const fn_response *res, int gateway_cors);
/* True for connection-level (hop-by-hop) headers a function may not set: they are dropped. */
int gw_is_hop_by_hop(const char *name, size_t len);
/* Adds a response header (name and value must outlive the request: pool memory or constants). */
void gw_add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len);

#endif
