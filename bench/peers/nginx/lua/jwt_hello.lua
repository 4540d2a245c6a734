-- jwt_hello.lua: GET /jwt/hello: {"message":"hello, world","sub": <sub>} for a valid HS256 bearer token
-- (verified on every request, no cache), 401 otherwise.
local respond = require "respond"

local claims, err = require("bench_jwt").verify_bearer(ngx.var.http_authorization)
if claims == nil then
    return respond(401, { error = err })
end
respond(200, { message = "hello, world", sub = claims.sub })
