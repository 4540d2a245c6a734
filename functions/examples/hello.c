/* hello: the smallest C function, answering a fixed JSON greeting (bffgate's C ceiling in benchmarks). */
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
