/* respond: response writing shared by every answer the gateway gives. */
#include "respond.h"

#include <string.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* Sends the whole response with a Content-Length (h2o copies the body). */
void gw_respond(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_send_inline(req, body != NULL ? body : "", len);
}

void gw_add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 1, NULL, value, value_len);
}

void gw_send_error(h2o_req_t *req, int status, const char *message, const char *limit, h2o_iovec_t id)
{
    fn_buf body = FN_BUF_INIT;
    int failed =
        fn_buf_append_str(&body, "{\"error\":") != 0 || fn_buf_append_json_string(&body, message, strlen(message)) != 0;
    if (limit != NULL)
        failed |=
            fn_buf_append_str(&body, ",\"limit\":") != 0 || fn_buf_append_json_string(&body, limit, strlen(limit)) != 0;
    failed |= fn_buf_append_str(&body, ",\"requestId\":") != 0 ||
              fn_buf_append_json_string(&body, id.base, id.len) != 0 || fn_buf_append_char(&body, '}') != 0;
    if (failed) {
        fn_buf_release(&body);
        gw_respond(req, 500, NULL, 0);
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    gw_respond(req, status, body.data, body.len);
    fn_buf_release(&body);
}

int gw_is_hop_by_hop(const char *name, size_t len)
{
    return fn_header_is_hop_by_hop(name, len);
}

void gw_send_function_response(h2o_req_t *req, const fn_response *res, int gateway_cors)
{
    for (size_t i = 0; i < res->nheaders; ++i) {
        const fn_header *h = &res->headers[i];
        if (gw_is_hop_by_hop(h->name, h->name_len) ||
            (gateway_cors && h->name_len > 15 && h2o_lcstris(h->name, 15, H2O_STRLIT("access-control-"))))
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len);
        h2o_iovec_t value = h2o_strdup(&req->pool, h->value, h->value_len);
        gw_add_header(req, name.base, name.len, value.base, value.len);
    }
    int bodyless = res->status == 204 || res->status == 304 || res->status < 200;
    gw_respond(req, res->status, bodyless ? NULL : res->body.data, bodyless ? 0 : res->body.len);
}
