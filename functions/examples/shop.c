/* shop: C functions of the example shop (price quotes computed from path and query). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bffgate/function.h>

const unsigned bfg_abi_version = BFG_ABI_VERSION;

int quote(const bfg_event *event, bfg_response *res);

/* Unit prices in cents, by product id. */
static long unit_price(const char *id, size_t len)
{
    static const struct {
        const char *id;
        long cents;
    } prices[] = {{"1", 1999}, {"2", 4950}, {"3", 12900}};
    for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); ++i) {
        if (strlen(prices[i].id) == len && memcmp(prices[i].id, id, len) == 0)
            return prices[i].cents;
    }
    return -1;
}

static int reply(bfg_response *res, int status, const char *body, size_t len)
{
    if (bfg_response_set_status(res, status) != 0 ||
        bfg_response_add_header(res, "content-type", 12, "application/json", 16) != 0)
        return 1;
    return bfg_response_append_body(res, body, len);
}

/* GET /quote/{id}?qty=N -> {"id":"1","qty":N,"unitCents":1999,"totalCents":...} */
int quote(const bfg_event *event, bfg_response *res)
{
    char body[256];
    bfg_str id = bfg_find(event->params, event->nparams, "id", 2);
    long cents = unit_price(id.ptr, id.len);
    if (cents < 0) {
        int n = snprintf(body, sizeof(body), "{\"error\":\"no such product\"}");
        return reply(res, 404, body, (size_t)n);
    }
    long qty = 1;
    bfg_str q = bfg_find(event->query, event->nquery, "qty", 3);
    if (q.ptr != NULL) {
        char tmp[16];
        char *end;
        if (q.len == 0 || q.len >= sizeof(tmp))
            goto BadQty;
        memcpy(tmp, q.ptr, q.len);
        tmp[q.len] = '\0';
        qty = strtol(tmp, &end, 10);
        if (*end != '\0' || qty < 1 || qty > 1000)
            goto BadQty;
    }
    int n = snprintf(body, sizeof(body), "{\"id\":\"%.*s\",\"qty\":%ld,\"unitCents\":%ld,\"totalCents\":%ld}",
                     (int)id.len, id.ptr, qty, cents, cents * qty);
    return reply(res, 200, body, (size_t)n);
BadQty:;
    int m = snprintf(body, sizeof(body), "{\"error\":\"qty must be an integer in 1..1000\"}");
    return reply(res, 400, body, (size_t)m);
}
