/* event: the function event (bfg_event) built from an h2o request. */
#ifndef GW_EVENT_H
#define GW_EVENT_H

#include <h2o.h>
#include <jansson.h>

#include "../bff/snapshot.h"

/*
 * Fills *ev from the request and its route match: path parameters and query percent-decoded
 * ('+' is a space in the query), headers as h2o has them (lower-case names). Arrays and decoded
 * strings live in the request pool; `id`, the frontend and route strings must outlive the event.
 * A JSON body (Content-Type application/json or *+json) sets *is_json; with `check` it is also checked
 * here (one pass, nothing allocated). Runtimes decode it themselves (Lua straight into tables) and jansson
 * only where a jansson value is needed (gw_event_json). Returns 0, or -1 with err set when a checked JSON
 * body is invalid (the client's 400).
 */
int gw_event_build(h2o_req_t *req, bfg_str id, const bff_frontend *fe, const bff_route_match *m, bfg_event *ev,
                   int check, int *is_json, char *err, size_t cap);
/* The event's JSON body as a jansson value (a new reference), or NULL with err saying where it is invalid. */
json_t *gw_event_json(const bfg_event *ev, char *err, size_t cap);

/*
 * The "request" object of a composition context, from the event: {"method", "path", "params": {name:
 * value}, "query": {name: value} (the first of repeated names), "headers": {name: value} (repeated
 * names joined with ", "), "body": the decoded JSON body, else the body text, else null, "claims": the
 * verified JWT claims or null}. Returns a new object, or NULL on out of memory.
 */
json_t *gw_event_context(const bfg_event *ev, const json_t *json, const json_t *claims);

#endif
