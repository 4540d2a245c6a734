#!/usr/bin/env bash
# mint-token.sh: prints an HS256 JWT for the peers' /jwt/hello (and bffgate's bench frontend).
# Usage: mint-token.sh [SECRET] [SUB] [TTL_SECONDS]
#   defaults: the bench secret, sub "bench-user", valid for 3600 s; a negative TTL mints an expired token.
set -euo pipefail
SECRET=${1:-bench-only-secret-not-for-production-0123456789}
SUB=${2:-bench-user}
TTL=${3:-3600}
case $SUB in *[\"\\]*) echo "mint-token.sh: SUB may not contain quotes or backslashes" >&2; exit 2 ;; esac
case $TTL in '' | - | *[!0-9-]* | ?*-*) echo "mint-token.sh: TTL_SECONDS must be an integer" >&2; exit 2 ;; esac

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
NOW=$(date +%s)
HEADER=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
PAYLOAD=$(printf '{"sub":"%s","iat":%d,"exp":%d}' "$SUB" "$NOW" $((NOW + TTL)) | b64url)
SIGNATURE=$(printf '%s.%s' "$HEADER" "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
printf '%s.%s.%s\n' "$HEADER" "$PAYLOAD" "$SIGNATURE"
