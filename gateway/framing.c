/* framing: ambiguous HTTP/1.1 request framing (see framing.h). */
#include "framing.h"

#include <string.h>
#include <strings.h>

#define HEAD_SCAN_MAX 65536

static int field_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

const char *gw_framing_conflict(const char *head, size_t len)
{
    int has_te = 0, has_cl = 0;
    const char *cl = NULL;
    size_t cl_len = 0;
    const char *line = head, *end = head + len;
    int first = 1;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl != NULL ? nl : end) - line);
        if (n > 0 && line[n - 1] == '\r')
            --n;
        if (n == 0 && !first)
            break; /* the end of the head */
        if (!first) {
            if (field_is(line, n, "transfer-encoding")) {
                has_te = 1;
            } else if (field_is(line, n, "content-length")) {
                const char *v = line + 15, *v_end = line + n;
                while (v < v_end && (*v == ' ' || *v == '\t'))
                    ++v;
                while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                    --v_end;
                if (memchr(v, ',', (size_t)(v_end - v)) != NULL)
                    return "a Content-Length list";
                if (has_cl && ((size_t)(v_end - v) != cl_len || memcmp(v, cl, cl_len) != 0))
                    return "Content-Length fields that disagree";
                has_cl = 1;
                cl = v;
                cl_len = (size_t)(v_end - v);
            }
        }
        first = 0;
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    if (has_te && has_cl)
        return "both Content-Length and Transfer-Encoding";
    return NULL;
}

const char *gw_http1_framing_conflict(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL || sock->input->size <= req->method.len)
        return NULL;
    const char *head = sock->input->bytes;
    if (memcmp(head, req->method.base, req->method.len) != 0 || head[req->method.len] != ' ')
        return NULL;
    size_t len = sock->input->size < HEAD_SCAN_MAX ? sock->input->size : HEAD_SCAN_MAX;
    return gw_framing_conflict(head, len);
}
