/* jwks: loads an RFC 7517 JSON Web Key Set into the pinned keys of a bff_jwt_config. */
#ifndef BFF_JWKS_H
#define BFF_JWKS_H

#include <stddef.h>

#include "jwt_verify.h"

/*
 * bff_jwks_load parses `text` (len bytes, NUL not needed) as {"keys": [ ... ]} and adds one key to `cfg`
 * (bff_jwt_config_add_key) for every signature key in it, in document order, pinned to one algorithm.
 *
 * Accepted, per key (an object):
 *   kty "RSA": "n" and "e" unpadded base64url; "alg" required, RS256, RS384 or RS512; the modulus
 *              2048 to 16384 bits, e at most 64 bits (OpenSSL verifies nothing larger); OpenSSL's public key
 *              check must pass (odd composite n without small factors, odd e > 1; e = 3 passes). Added as a
 *              PEM public key ("-----BEGIN PUBLIC KEY-----"). A leading zero octet in n is tolerated.
 *   kty "EC":  "crv" P-256 or P-384; "x" and "y" unpadded base64url of exactly 32 or 48 bytes, a point on
 *              the curve; "alg" optional, and when present ES256 for P-256, ES384 for P-384. Added as PEM.
 *   kty "oct": "k" unpadded base64url, non-empty; "alg" required, HS256, HS384 or HS512. Added as the
 *              decoded secret bytes.
 *   "kid", when present, must be a string; it becomes the key's kid (bff_jwt_verify uses a key without kid
 *   only when it is the config's only key). Other members (x5c, x5t, ...) are ignored.
 * Skipped, without an error: a key whose "use" is not "sig" (e.g. "enc"), and a key with "key_ops" that
 * does not list "verify". A skipped key is not checked further.
 * Refused (the whole document): text that is not JSON or has duplicate member names; no "keys" array; a
 * key that is not an object; another kty; alg "none", an unknown alg, or one that does not fit the kty
 * or curve; base64url with padding, other characters or non-zero trailing bits; a private member
 * ("d", "p", "q", "dp", "dq", "qi", "oth") in an RSA or EC key; a "use" that is not a string or a
 * "key_ops" that is not an array of strings; two keys with the same kid, including a kid already in
 * `cfg`; no signature key left after skipping.
 *
 * Returns the number of keys added (>= 1), or -1 with `err` (cap bytes, may be NULL) naming the key by
 * index and field, e.g. `keys[2].n: not base64url`. On -1, `cfg` is exactly as it was on entry: keys are
 * built in a scratch config and moved into `cfg` only when the whole document is valid.
 *
 * Ownership: `text` is only read; `cfg` owns the added keys (bff_jwt_config_release frees them). Decoded
 * buffers, scratch secrets and the parsed "k" strings are zeroed before they are freed; copies made inside
 * jansson's parser are not (its allocator is process-wide).
 *
 * Thread-safe: no mutable globals; concurrent calls on different configs are independent; OpenSSL errors
 * raised inside are popped, so the calling thread's error queue is left as it was. Not for the request
 * path: it parses JSON and builds keys with OpenSSL.
 */
int bff_jwks_load(bff_jwt_config *cfg, const char *text, size_t len, char *err, size_t cap);

#endif
