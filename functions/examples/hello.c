/* hello: the smallest C function, answering a fixed JSON greeting (bffgate's C ceiling in benchmarks); whoami. */
#include <bffgate/function.h>

const unsigned bfg_abi_version = BFG_ABI_VERSION;

int hello(const bfg_event *event, bfg_response *res);

int hello(const bfg_event *event, bfg_response *res)
{
    static const char body[] = "{\"message\":\"hello from C\"}";
    (void)event;
    if (bfg_response_add_header(res, "content-type", 12, "application/json", 16) != 0)
        return 1;
    return bfg_response_append_body(res, body, sizeof(body) - 1);
}

int whoami(const bfg_event *event, bfg_response *res);

/* {"claims": <the verified JWT claims, or null>}: the claims arrive as JSON text, ready to embed. */
int whoami(const bfg_event *event, bfg_response *res)
{
    if (bfg_response_add_header(res, "content-type", 12, "application/json", 16) != 0 ||
        bfg_response_append_body(res, "{\"claims\":", 10) != 0)
        return 1;
    int rc = event->claims.ptr != NULL ? bfg_response_append_body(res, event->claims.ptr, event->claims.len)
                                       : bfg_response_append_body(res, "null", 4);
    return rc != 0 || bfg_response_append_body(res, "}", 1) != 0;
}
