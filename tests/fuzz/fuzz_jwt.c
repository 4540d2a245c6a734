/* fuzz_jwt: a bearer token through verification against pinned HMAC keys (shape, base64url, header JSON, alg and
 * kid checks, signature, claims), and, for inputs that start with '{', a JWKS document through the key loader. */
#include <stdlib.h>
#include <string.h>

#include "bff/jwks.h"
#include "bff/jwt_verify.h"
#include "fuzz.h"

static bff_jwt_config cfg;
static bff_claim_rule rules[2] = {{.claim = "scope", .op = BFF_CLAIM_CONTAINS, .value = "orders:read"},
                                  {.claim = "sub", .op = BFF_CLAIM_PRESENT}};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char secret[] = "fuzz-secret-0123456789abcdefghijklmnop";
    bff_jwt_config_add_key(&cfg, "k1", BFF_JWT_HS256, secret, sizeof(secret) - 1);
    bff_jwt_config_add_key(&cfg, "k2", BFF_JWT_HS512, secret, sizeof(secret) - 1);
    static char issuer[] = "https://issuer.test", audience[] = "bffgate";
    static char *audiences[] = {audience};
    cfg.issuer = issuer;
    cfg.audiences = audiences;
    cfg.naudiences = 1;
    cfg.leeway_s = 30;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg.keys == NULL)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size > 0 && data[0] == '{') {
        bff_jwt_config jwks = {0};
        char err[256];
        bff_jwks_load(&jwks, (const char *)data, size, err, sizeof(err));
        bff_jwt_config_release(&jwks);
        return 0;
    }
    json_t *claims = NULL;
    char reason[256];
    if (bff_jwt_verify(&cfg, (const char *)data, size, 1800000000, &claims, reason, sizeof(reason)) == 0) {
        if (!json_is_object(claims))
            abort();
        bff_jwt_rules_check(rules, 2, claims, reason, sizeof(reason));
        json_decref(claims);
    } else if (claims != NULL) {
        abort(); /* a refused token yields no claims */
    }
    return 0;
}
