/* jwt_verify: pinned-key JWT verification: the header is checked here before libjwt verifies the signature. */
#include "jwt_verify.h"

#include <errno.h>
#include <jwt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    jwt_alg_t libjwt;
} algs[BFF_JWT_ALG_COUNT] = {
    [BFF_JWT_HS256] = {"HS256", JWT_ALG_HS256}, [BFF_JWT_HS384] = {"HS384", JWT_ALG_HS384},
    [BFF_JWT_HS512] = {"HS512", JWT_ALG_HS512}, [BFF_JWT_RS256] = {"RS256", JWT_ALG_RS256},
    [BFF_JWT_RS384] = {"RS384", JWT_ALG_RS384}, [BFF_JWT_RS512] = {"RS512", JWT_ALG_RS512},
    [BFF_JWT_ES256] = {"ES256", JWT_ALG_ES256}, [BFF_JWT_ES384] = {"ES384", JWT_ALG_ES384},
};

int bff_jwt_alg_parse(const char *name, bff_jwt_alg *out)
{
    for (int i = 0; i < BFF_JWT_ALG_COUNT; ++i) {
        if (strcmp(algs[i].name, name) == 0) {
            *out = (bff_jwt_alg)i;
            return 0;
        }
    }
    return -1;
}

const char *bff_jwt_alg_name(bff_jwt_alg alg)
{
    return (unsigned)alg < BFF_JWT_ALG_COUNT ? algs[alg].name : "?";
}

int bff_jwt_config_add_key(bff_jwt_config *cfg, const char *kid, bff_jwt_alg alg, const void *material, size_t len)
{
    if (material == NULL || len == 0 || (unsigned)alg >= BFF_JWT_ALG_COUNT)
        return -EINVAL;
    bff_jwt_key *keys = realloc(cfg->keys, (cfg->nkeys + 1) * sizeof(*keys));
    if (keys == NULL)
        return -ENOMEM;
    cfg->keys = keys;
    bff_jwt_key *k = &keys[cfg->nkeys];
    memset(k, 0, sizeof(*k));
    k->alg = alg;
    k->material = malloc(len + 1); /* NUL-terminated: libjwt reads PEM keys as C strings */
    k->kid = kid != NULL ? strdup(kid) : NULL;
    if (k->material == NULL || (kid != NULL && k->kid == NULL)) {
        free(k->material);
        free(k->kid);
        return -ENOMEM;
    }
    memcpy(k->material, material, len);
    k->material[len] = '\0';
    k->len = len;
    ++cfg->nkeys;
    return 0;
}

void bff_jwt_config_release(bff_jwt_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nkeys; ++i) {
        free(cfg->keys[i].kid);
        if (cfg->keys[i].material != NULL)
            memset(cfg->keys[i].material, 0, cfg->keys[i].len); /* HMAC secrets do not outlive the config */
        free(cfg->keys[i].material);
    }
    free(cfg->keys);
    for (size_t i = 0; i < cfg->naudiences; ++i)
        free(cfg->audiences[i]);
    free(cfg->audiences);
    free(cfg->issuer);
    memset(cfg, 0, sizeof(*cfg));
}

static int fail(char *reason, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *reason, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url into a malloc'd NUL-terminated buffer. Returns NULL on a bad character. */
static char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    if (len % 4 == 1)
        return NULL;
    char *out = malloc(len * 3 / 4 + 3);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; ++i) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* A NumericDate claim: absent (1, *present = 0), a number (1), or anything else (0). */
static int numeric_claim(json_t *claims, const char *name, double *value, int *present)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return 1;
    if (!json_is_number(v))
        return 0;
    *value = json_number_value(v);
    return 1;
}

static int check_claims(const bff_jwt_config *cfg, json_t *claims, time_t now, char *reason, size_t cap)
{
    double exp = 0, nbf = 0, iat = 0, t = (double)now, leeway = (double)cfg->leeway_s;
    int has_exp, has_nbf, has_iat;
    if (!numeric_claim(claims, "exp", &exp, &has_exp) || !numeric_claim(claims, "nbf", &nbf, &has_nbf) ||
        !numeric_claim(claims, "iat", &iat, &has_iat))
        return fail(reason, cap, "exp, nbf and iat must be numbers");
    if (has_exp && t >= exp + leeway) /* RFC 7519 4.1.4: valid only before exp */
        return fail(reason, cap, "expired");
    if (has_nbf && t + leeway < nbf)
        return fail(reason, cap, "not valid yet (nbf)");
    if (has_iat && iat > t + leeway)
        return fail(reason, cap, "issued in the future (iat)");
    if (cfg->issuer != NULL) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (iss == NULL || strcmp(iss, cfg->issuer) != 0)
            return fail(reason, cap, "wrong or missing issuer");
    }
    if (cfg->naudiences > 0) {
        json_t *aud = json_object_get(claims, "aud");
        int ok = 0;
        for (size_t i = 0; i < cfg->naudiences && !ok; ++i) {
            if (json_is_string(aud)) {
                ok = strcmp(json_string_value(aud), cfg->audiences[i]) == 0;
            } else if (json_is_array(aud)) {
                size_t k;
                json_t *item;
                json_array_foreach(aud, k, item)
                {
                    if (json_is_string(item) && strcmp(json_string_value(item), cfg->audiences[i]) == 0)
                        ok = 1;
                }
            }
        }
        if (!ok)
            return fail(reason, cap, "wrong or missing audience");
    }
    return 0;
}

int bff_jwt_verify(const bff_jwt_config *cfg, const char *token, size_t len, time_t now, json_t **claims, char *reason,
                   size_t cap)
{
    *claims = NULL;
    size_t max = cfg->max_token_bytes != 0 ? cfg->max_token_bytes : BFF_JWT_DEFAULT_MAX_TOKEN;
    if (len == 0)
        return fail(reason, cap, "empty token");
    if (len > max) /* libjwt decodes on the stack: refuse before it sees anything large */
        return fail(reason, cap, "token longer than %zu bytes", max);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len)
        return fail(reason, cap, "not three non-empty base64url parts");
    for (size_t i = 0; i < len; ++i) {
        if (token[i] != '.' && b64url_value((unsigned char)token[i]) < 0)
            return fail(reason, cap, "not base64url");
    }

    /* The header, checked here: libjwt trusts its "alg". */
    size_t header_len;
    char *header_text = b64url_decode(token, (size_t)(dot1 - token), &header_len);
    if (header_text == NULL)
        return fail(reason, cap, "header is not base64url");
    json_error_t jerr;
    json_t *header = json_loadb(header_text, header_len, 0, &jerr);
    free(header_text);
    if (!json_is_object(header)) {
        json_decref(header);
        return fail(reason, cap, "header is not a JSON object");
    }
    const char *alg_name = json_string_value(json_object_get(header, "alg"));
    json_t *kid_value = json_object_get(header, "kid");
    bff_jwt_alg alg;
    if (alg_name == NULL || bff_jwt_alg_parse(alg_name, &alg) != 0) {
        int rc = fail(reason, cap, "algorithm \"%s\" is not accepted", alg_name != NULL ? alg_name : "(missing)");
        json_decref(header);
        return rc;
    }
    if (kid_value != NULL && !json_is_string(kid_value)) {
        json_decref(header);
        return fail(reason, cap, "kid is not a string");
    }
    const char *kid = json_string_value(kid_value);
    const bff_jwt_key *key = NULL;
    for (size_t i = 0; i < cfg->nkeys; ++i) {
        const bff_jwt_key *k = &cfg->keys[i];
        if (kid != NULL ? (k->kid != NULL && strcmp(k->kid, kid) == 0) : cfg->nkeys == 1)
            key = k;
    }
    if (key == NULL) {
        int rc = kid != NULL ? fail(reason, cap, "no key with kid \"%.64s\"", kid)
                             : fail(reason, cap, "the token has no kid and several keys are configured");
        json_decref(header);
        return rc;
    }
    json_decref(header);
    if (key->alg != alg)
        return fail(reason, cap, "algorithm %s does not match the key's %s", bff_jwt_alg_name(alg),
                    bff_jwt_alg_name(key->alg));
    if (key->len == 0)
        return fail(reason, cap, "empty key"); /* libjwt would skip verification */

    /* Only now the signature, with the pinned key. */
    char *copy = strndup(token, len);
    if (copy == NULL)
        return fail(reason, cap, "out of memory");
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, key->material, (int)key->len);
    free(copy);
    if (rc != 0 || jwt == NULL) {
        jwt_free(jwt);
        return fail(reason, cap, "invalid signature or encoding");
    }
    if (jwt_get_alg(jwt) != algs[key->alg].libjwt) {
        jwt_free(jwt);
        return fail(reason, cap, "verified with an unexpected algorithm");
    }
    char *grants = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    json_t *parsed = grants != NULL ? json_loads(grants, 0, &jerr) : NULL;
    free(grants);
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return fail(reason, cap, "the claims are not a JSON object");
    }
    if (check_claims(cfg, parsed, now, reason, cap) != 0) {
        json_decref(parsed);
        return -1;
    }
    *claims = parsed;
    return 0;
}

static int contains_word(const char *text, const char *word)
{
    size_t wlen = strlen(word);
    for (const char *p = text; *p != '\0';) {
        while (*p == ' ')
            ++p;
        const char *end = strchr(p, ' ');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == wlen && memcmp(p, word, len) == 0)
            return 1;
        p += len;
    }
    return 0;
}

int bff_jwt_rules_check(const bff_claim_rule *rules, size_t n, const json_t *claims, char *reason, size_t cap)
{
    for (size_t i = 0; i < n; ++i) {
        const bff_claim_rule *r = &rules[i];
        json_t *v = json_object_get(claims, r->claim);
        int ok = v != NULL;
        if (ok && r->op == BFF_CLAIM_EQUALS)
            ok = json_is_string(v) && strcmp(json_string_value(v), r->value) == 0;
        if (ok && r->op == BFF_CLAIM_CONTAINS) {
            if (json_is_string(v)) {
                ok = contains_word(json_string_value(v), r->value);
            } else if (json_is_array(v)) {
                size_t k;
                json_t *item;
                ok = 0;
                json_array_foreach(v, k, item)
                {
                    if (json_is_string(item) && strcmp(json_string_value(item), r->value) == 0)
                        ok = 1;
                }
            } else {
                ok = 0;
            }
        }
        if (v == NULL)
            return fail(reason, cap, "claim \"%s\" is missing", r->claim);
        if (!ok)
            return fail(reason, cap, "claim \"%s\" %s \"%s\"", r->claim, r->op == BFF_CLAIM_EQUALS ? "is not" : "lacks",
                        r->value);
    }
    return 0;
}

void bff_jwt_rules_free(bff_claim_rule *rules, size_t n)
{
    for (size_t i = 0; rules != NULL && i < n; ++i) {
        free(rules[i].claim);
        free(rules[i].value);
    }
    free(rules);
}
