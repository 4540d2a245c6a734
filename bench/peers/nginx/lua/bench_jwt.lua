-- bench_jwt.lua: HS256 JWT verification for the nginx peer, without lua-resty-jwt (not packaged in Debian):
-- HMAC-SHA256 from OpenSSL's libcrypto through LuaJIT's FFI, base64url from lua-resty-core (ngx.base64),
-- JSON from cjson. Checks: three parts, header alg HS256, signature (CRYPTO_memcmp, constant time),
-- exp a number in the future, sub a string.
local ffi = require "ffi"
local cjson = require "cjson.safe"
local base64 = require "ngx.base64"

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data,
                    size_t data_len, unsigned char *md, unsigned int *md_len);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
]]

local crypto = ffi.load("libcrypto.so.3")
local SHA256 = crypto.EVP_sha256()
local SECRET = "bench-only-secret-not-for-production-0123456789"
local MAC_LEN = 32

-- One worker, and nothing yields between HMAC() and the comparison: one output buffer is enough.
local mac = ffi.new("unsigned char[?]", MAC_LEN)
local mac_len = ffi.new("unsigned int[1]")

local decode_base64url = base64.decode_base64url
local decode_json = cjson.decode
local find, sub = string.find, string.sub
local ngx_time = ngx.time

local _M = {}

-- Returns the claims table, or nil and a reason.
function _M.verify_bearer(authorization)
    if type(authorization) ~= "string" or sub(authorization, 1, 7) ~= "Bearer " then
        return nil, "missing bearer token"
    end
    local dot1 = find(authorization, ".", 8, true)
    local dot2 = dot1 and find(authorization, ".", dot1 + 1, true)
    if dot2 == nil or find(authorization, ".", dot2 + 1, true) then
        return nil, "invalid token"
    end

    local header = decode_json(decode_base64url(sub(authorization, 8, dot1 - 1)) or "")
    if type(header) ~= "table" or header.alg ~= "HS256" then
        return nil, "invalid token"
    end

    local signature = decode_base64url(sub(authorization, dot2 + 1))
    if signature == nil or #signature ~= MAC_LEN then
        return nil, "invalid token"
    end
    local signed = sub(authorization, 8, dot2 - 1)
    if crypto.HMAC(SHA256, SECRET, #SECRET, signed, #signed, mac, mac_len) == nil or mac_len[0] ~= MAC_LEN or
        crypto.CRYPTO_memcmp(mac, signature, MAC_LEN) ~= 0 then
        return nil, "invalid token"
    end

    local claims = decode_json(decode_base64url(sub(authorization, dot1 + 1, dot2 - 1)) or "")
    if type(claims) ~= "table" or type(claims.exp) ~= "number" or claims.exp <= ngx_time() or
        type(claims.sub) ~= "string" then
        return nil, "invalid token"
    end
    return claims
end

return _M
