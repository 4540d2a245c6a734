/* framing: refusing HTTP/1.1 requests whose body length can be read two ways (request smuggling).
 *
 * h2o 2.2 resolves Content-Length / Transfer-Encoding conflicts itself (Transfer-Encoding wins, the first of
 * several Content-Lengths wins) and hides both fields from req->headers, so a request that a proxy in front
 * reads one way is read another way here. RFC 9112 6.3 lets a server reject such requests; bffgate does, with
 * 400, and closes the connection (what follows the ambiguous body cannot be trusted to be a request). */
#ifndef GW_FRAMING_H
#define GW_FRAMING_H

#include <stddef.h>

#include <h2o.h>

/* Scans a request head (request line and header lines, up to the empty line or len) and returns NULL, or the
 * reason it is ambiguous: both Content-Length and Transfer-Encoding, or Content-Length fields (or a list in
 * one) that disagree. Pure: for the handler and the unit tests. */
const char *gw_framing_conflict(const char *head, size_t len);

/* For an HTTP/1 request being handled: h2o keeps its head at the start of the connection's input buffer until
 * the response is done. Returns the reason to refuse it, or NULL (also when the buffer does not start with
 * this request's method and a space: then nothing is claimed). Worker thread. */
const char *gw_http1_framing_conflict(h2o_req_t *req);

#endif
