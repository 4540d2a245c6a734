-- fanout.lua: GET /fanout: three upstream calls in parallel (subrequests to the internal /_upstream/
-- location, which proxies to the keep-alive upstream block), answered as {"a": ..., "b": ..., "c": ...}.
local cjson = require "cjson.safe"
local respond = require "respond"

local ra, rb, rc = ngx.location.capture_multi({
    { "/_upstream/delay/10/a" },
    { "/_upstream/delay/10/b" },
    { "/_upstream/delay/10/c" },
})
if ra.status ~= 200 or rb.status ~= 200 or rc.status ~= 200 or ra.truncated or rb.truncated or rc.truncated then
    return respond(502, { error = "upstream call failed" })
end
local a, b, c = cjson.decode(ra.body), cjson.decode(rb.body), cjson.decode(rc.body)
if a == nil or b == nil or c == nil then
    return respond(502, { error = "upstream answered something that is not JSON" })
end
respond(200, { a = a, b = b, c = c })
