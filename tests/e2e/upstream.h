/* upstream: a scriptable HTTP/1.1 upstream server, run inside the test process, for e2e tests of upstream calls. */
#ifndef E2E_UPSTREAM_H
#define E2E_UPSTREAM_H

/*
 * The server listens on 127.0.0.1 on a port the kernel picks. One thread accepts, one thread serves each
 * connection (keep-alive, several requests per connection, request bodies framed by Content-Length or chunked,
 * "Expect: 100-continue" answered). Responses carry Content-Length (except /chunked) and "Connection: close"
 * when the server closes after them (the request asked for it, HTTP/1.0, /close/...).
 *
 * What it answers is chosen by the request path, so tests need no setup:
 *   /json/<any>            200 application/json {"path": "<path>", "method": "<method>", "query": "<raw query>",
 *                          "body": <the request body as is if it is JSON, else as a JSON string; null if empty>}
 *                          ("path" is the whole request path without the query, /json/ included)
 *   /delay/<ms>/<any>      the same after <ms> milliseconds; if the client closes meanwhile, counts as aborted
 *   /status/<code>         that status (200..599) with {"status": <code>} (no body for 204 and 304)
 *   /invalid               200 application/json whose body is not JSON: {"oops":
 *   /text                  200 text/plain "hello"
 *   /huge/<bytes>          200 application/json, a JSON string exactly <bytes> long ("xxx...x"), sent in pieces
 *   /reset                 reads the request, then closes the connection with a TCP RST and no response
 *   /hang                  never answers; counts as aborted when the client closes
 *   /drip/<ms>             200 application/json, Content-Length 10, then one byte of "12345678" (quotes
 *                          included) every <ms> milliseconds
 *   /chunked/<n>           200 application/json, Transfer-Encoding: chunked, [0,1,...,n-1] over several chunks
 *   /close/<any>           like /json/<any>, then "Connection: close" and closes the connection
 *   anything else          404 {"error": "not found", "path": "<path>"}
 * A request head larger than 64 KiB gets 431 and the connection is closed.
 *
 * Threading: every function may be called from any thread, except that e2e_upstream_stop must not race with the
 * others on the same server.
 */

typedef struct e2e_upstream e2e_upstream;

/* Starts listening and accepting. Returns NULL (with a message on stderr) if a socket or thread call fails. */
e2e_upstream *e2e_upstream_start(void);
/* The port it listens on. */
int e2e_upstream_port(const e2e_upstream *u);
/* Closes the listener and every connection, joins every thread, frees everything. Accepts NULL. */
void e2e_upstream_stop(e2e_upstream *u);

/* Complete request heads received. */
unsigned e2e_upstream_requests(const e2e_upstream *u);
/* Connections accepted. */
unsigned e2e_upstream_connections(const e2e_upstream *u);
/* Connections accepted and not yet closed by the server (it closes as soon as it sees the client go). */
unsigned e2e_upstream_open_connections(const e2e_upstream *u);
/* Requests whose head was received but whose connection the client closed before the response was fully sent
 * (a cancelled or timed-out call: /delay, /hang, /drip, /huge the client stopped reading). Counted once the server
 * has closed that connection, so open_connections already reflects it. */
unsigned e2e_upstream_aborted(const e2e_upstream *u);

/* Waits until counter(u) >= at_least or timeout_ms passed (the server sees the client go some milliseconds after
 * the client decides to go); returns the counter's last value. Example:
 * e2e_upstream_wait(u, e2e_upstream_aborted, 1, 2000). */
unsigned e2e_upstream_wait(const e2e_upstream *u, unsigned (*counter)(const e2e_upstream *), unsigned at_least,
                           int timeout_ms);

/* The last complete request (head and body) whose target (path with query) starts with path_prefix, as one
 * malloc'd text "METHOD TARGET\nname: value\n...\n\nBODY" with header names lower-cased and values as sent, in
 * the order received; NULL if none. A request is recorded once its body is read, before it is answered. The
 * server keeps the last 64 requests. The caller frees the text. */
char *e2e_upstream_last_request(e2e_upstream *u, const char *path_prefix);

#endif
