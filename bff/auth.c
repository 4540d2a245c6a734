/* auth: loads JWT sections (keys from env, files, PEM and JWKS; issuer, audience, rules) into bff_auth. */
#include "auth.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../functions/fn.h"
#include "jwks.h"

static atomic_uint_fast64_t auth_ids;

static const char *const jwt_keys[] = {"keys",   "issuer",          "audience", "leeway_s",
                                       "cookie", "max_token_bytes", "require",  NULL};
static const char *const rule_keys[] = {"claim", "equals", "contains", NULL};
static const char *const key_keys[] = {"alg", "kid", "secret_env", "secret_file", "public_key_file", NULL};

void bff_auth_parse_rules(json_t *list, const char *file, const char *path, bff_claim_rule **out, size_t *nout,
                          cfg_errors *errs)
{
    if (!json_is_array(list)) {
        cfg_error(errs, file, path, "must be a list of {\"claim\": ..., \"equals\"|\"contains\": ...}");
        return;
    }
    size_t n = json_array_size(list);
    bff_claim_rule *rules = calloc(n + 1, sizeof(*rules));
    if (rules == NULL) {
        cfg_error(errs, file, path, "out of memory");
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
        char p[600];
        cfg_path_index(p, sizeof(p), path, i);
        json_t *def = json_array_get(list, i);
        if (!json_is_object(def)) {
            cfg_error(errs, file, p, "a rule must be an object with \"claim\"");
            continue;
        }
        cfg_check_keys(errs, file, p, def, rule_keys);
        const char *claim = NULL, *equals = NULL, *contains = NULL;
        if (cfg_get_string(errs, file, p, def, "claim", 1, &claim) != 1)
            continue;
        cfg_get_string(errs, file, p, def, "equals", 0, &equals);
        cfg_get_string(errs, file, p, def, "contains", 0, &contains);
        if (equals != NULL && contains != NULL) {
            cfg_error(errs, file, p, "give \"equals\" or \"contains\", not both");
            continue;
        }
        bff_claim_rule *r = &rules[count++];
        r->claim = strdup(claim);
        r->op = equals != NULL ? BFF_CLAIM_EQUALS : contains != NULL ? BFF_CLAIM_CONTAINS : BFF_CLAIM_PRESENT;
        r->value = equals != NULL ? strdup(equals) : contains != NULL ? strdup(contains) : NULL;
    }
    *out = rules;
    *nout = count;
}

/* Reads a key file named at path.field; returns malloc'd bytes (NUL-terminated) or NULL with an error. */
static char *read_key_file(const char *file, const char *path, const char *field, const char *name, size_t *len,
                           cfg_errors *errs)
{
    char p[600];
    cfg_path_key(p, sizeof(p), path, field);
    char *resolved = cfg_resolve_path(file, name);
    char *material = NULL;
    int rc = resolved != NULL ? fn_read_file(resolved, &material, len) : -ENOMEM;
    if (rc != 0)
        cfg_error(errs, file, p, "cannot read %s: %s", resolved != NULL ? resolved : "?", strerror(-rc));
    free(resolved);
    return rc == 0 ? material : NULL;
}

static void load_jwks(bff_jwt_config *jwt, const char *jwks_file, const char *file, const char *path, cfg_errors *errs)
{
    size_t len = 0;
    char *text = read_key_file(file, path, "jwks_file", jwks_file, &len, errs);
    if (text == NULL)
        return;
    char err[512], p[600];
    if (bff_jwks_load(jwt, text, len, err, sizeof(err)) < 0) {
        cfg_path_key(p, sizeof(p), path, "jwks_file");
        cfg_error(errs, file, p, "%s: %s", jwks_file, err);
    }
    memset(text, 0, len); /* a JWKS may hold HMAC secrets */
    free(text);
}

/*
 * One key: {"alg": "HS256", "secret_env" | "secret_file": ...}, {"alg": "RS256", "public_key_file": ...},
 * or {"jwks_file": ...} (every signature key of a JWKS document, each pinned to its own algorithm).
 */
static void load_key(bff_jwt_config *jwt, json_t *def, const char *file, const char *path, cfg_errors *errs)
{
    if (!json_is_object(def)) {
        cfg_error(errs, file, path, "a key must be an object with \"alg\" and its material, or \"jwks_file\"");
        return;
    }
    const char *jwks_file = NULL;
    if (cfg_get_string(errs, file, path, def, "jwks_file", 0, &jwks_file) == 1) {
        if (json_object_size(def) != 1)
            cfg_error(errs, file, path, "a \"jwks_file\" key takes no other field (each JWK names its alg and kid)");
        else
            load_jwks(jwt, jwks_file, file, path, errs);
        return;
    }
    cfg_check_keys(errs, file, path, def, key_keys);
    const char *alg_name = NULL, *kid = NULL, *env = NULL, *secret_file = NULL, *pem_file = NULL;
    bff_jwt_alg alg;
    char p[600];
    if (cfg_get_string(errs, file, path, def, "alg", 1, &alg_name) != 1)
        return;
    cfg_path_key(p, sizeof(p), path, "alg");
    if (bff_jwt_alg_parse(alg_name, &alg) != 0) {
        cfg_error(errs, file, p, "unknown algorithm \"%s\" (HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384)",
                  alg_name);
        return;
    }
    cfg_get_string(errs, file, path, def, "kid", 0, &kid);
    cfg_get_string(errs, file, path, def, "secret_env", 0, &env);
    cfg_get_string(errs, file, path, def, "secret_file", 0, &secret_file);
    cfg_get_string(errs, file, path, def, "public_key_file", 0, &pem_file);
    int hmac = alg <= BFF_JWT_HS512;
    if ((env != NULL) + (secret_file != NULL) + (pem_file != NULL) != 1 || (hmac && pem_file != NULL) ||
        (!hmac && pem_file == NULL)) {
        cfg_error(errs, file, path,
                  hmac ? "an HMAC key needs exactly one of \"secret_env\" or \"secret_file\""
                       : "an RSA or EC key needs \"public_key_file\" (a PEM public key)");
        return;
    }
    char *material = NULL;
    size_t len = 0;
    if (env != NULL) {
        const char *value = getenv(env);
        cfg_path_key(p, sizeof(p), path, "secret_env");
        if (value == NULL || value[0] == '\0') {
            /* libjwt skips verification for an empty key: never accept one. */
            cfg_error(errs, file, p, "environment variable %s is unset or empty", env);
            return;
        }
        material = strdup(value);
        len = strlen(value);
    } else {
        const char *field = secret_file != NULL ? "secret_file" : "public_key_file";
        material = read_key_file(file, path, field, secret_file != NULL ? secret_file : pem_file, &len, errs);
        if (material == NULL)
            return;
        if (secret_file != NULL) /* a trailing newline is not part of the secret */
            while (len > 0 && (material[len - 1] == '\n' || material[len - 1] == '\r'))
                material[--len] = '\0';
        if (len == 0) {
            cfg_path_key(p, sizeof(p), path, field);
            cfg_error(errs, file, p, "the key is empty");
            free(material);
            return;
        }
    }
    int rc = material != NULL ? bff_jwt_config_add_key(jwt, kid, alg, material, len) : -ENOMEM;
    if (rc == -EINVAL) {
        cfg_path_key(p, sizeof(p), path, "public_key_file");
        cfg_error(errs, file, p, "not a PEM public key for %s (%s)", alg_name,
                  alg <= BFF_JWT_RS512   ? "RSA of at least 2048 bits"
                  : alg == BFF_JWT_ES256 ? "EC P-256"
                                         : "EC P-384");
    } else if (rc != 0) {
        cfg_error(errs, file, path, "cannot add the key: out of memory");
    }
    if (material != NULL)
        memset(material, 0, len);
    free(material);
}

static void check_kids(const bff_jwt_config *jwt, const char *file, const char *path, cfg_errors *errs)
{
    size_t without_kid = 0;
    for (size_t i = 0; i < jwt->nkeys; ++i) {
        without_kid += jwt->keys[i].kid == NULL;
        for (size_t k = 0; k < i; ++k) {
            if (jwt->keys[i].kid != NULL && jwt->keys[k].kid != NULL && strcmp(jwt->keys[i].kid, jwt->keys[k].kid) == 0)
                cfg_error(errs, file, path, "two keys have the kid \"%s\"", jwt->keys[i].kid);
        }
    }
    if (jwt->nkeys > 1 && without_kid > 0)
        cfg_error(errs, file, path, "with several keys, every key needs a \"kid\"");
}

static void load_audiences(bff_jwt_config *jwt, json_t *aud, const char *file, const char *path, cfg_errors *errs)
{
    size_t n = json_is_array(aud) ? json_array_size(aud) : 1;
    jwt->audiences = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n && jwt->audiences != NULL; ++i) {
        json_t *a = json_is_array(aud) ? json_array_get(aud, i) : aud;
        if (!json_is_string(a)) {
            cfg_error(errs, file, path, "must be a string or a list of strings");
            return;
        }
        jwt->audiences[jwt->naudiences++] = strdup(json_string_value(a));
    }
}

bff_auth *bff_auth_load(json_t *def, const char *file, const char *path, cfg_errors *errs)
{
    size_t errors_before = errs->count;
    char p[600];
    if (!json_is_object(def)) {
        cfg_error(errs, file, path, "must be an object with \"keys\"");
        return NULL;
    }
    cfg_check_keys(errs, file, path, def, jwt_keys);
    bff_auth *auth = calloc(1, sizeof(*auth));
    if (auth == NULL) {
        cfg_error(errs, file, path, "out of memory");
        return NULL;
    }
    auth->id = atomic_fetch_add(&auth_ids, 1) + 1;
    bff_jwt_config *jwt = &auth->jwt;
    json_t *keys = json_object_get(def, "keys");
    cfg_path_key(p, sizeof(p), path, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        cfg_error(errs, file, p, keys == NULL ? "missing required key" : "must be a non-empty list");
    } else {
        for (size_t i = 0; i < json_array_size(keys); ++i) {
            char q[640];
            cfg_path_index(q, sizeof(q), p, i);
            load_key(jwt, json_array_get(keys, i), file, q, errs);
        }
        check_kids(jwt, file, p, errs);
    }
    const char *issuer = NULL, *cookie = NULL;
    if (cfg_get_string(errs, file, path, def, "issuer", 0, &issuer) == 1)
        jwt->issuer = strdup(issuer);
    if (cfg_get_string(errs, file, path, def, "cookie", 0, &cookie) == 1)
        auth->cookie = strdup(cookie);
    uint64_t v;
    if (cfg_get_uint(errs, file, path, def, "leeway_s", 0, 3600, 0, &v) == 1)
        jwt->leeway_s = v;
    if (cfg_get_uint(errs, file, path, def, "max_token_bytes", 256, 65536, 0, &v) == 1)
        jwt->max_token_bytes = (size_t)v;
    json_t *require = json_object_get(def, "require");
    if (require != NULL) {
        cfg_path_key(p, sizeof(p), path, "require");
        bff_auth_parse_rules(require, file, p, &auth->rules, &auth->nrules, errs);
    }
    json_t *aud = json_object_get(def, "audience");
    if (aud != NULL) {
        cfg_path_key(p, sizeof(p), path, "audience");
        load_audiences(jwt, aud, file, p, errs);
    }
    if (errs->count != errors_before) {
        bff_auth_free(auth);
        return NULL;
    }
    return auth;
}

void bff_auth_free(bff_auth *auth)
{
    if (auth == NULL)
        return;
    bff_jwt_config_release(&auth->jwt);
    bff_jwt_rules_free(auth->rules, auth->nrules);
    free(auth->cookie);
    free(auth);
}
