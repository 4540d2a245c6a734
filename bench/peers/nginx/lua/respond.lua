-- respond.lua: sends a Lua table as the JSON response (status, Content-Length, body from cjson).
-- The content type comes from `default_type application/json` in nginx.conf.
local cjson = require "cjson.safe"

local encode = cjson.encode
local ngx = ngx

return function(status, value)
    local body = encode(value)
    ngx.status = status
    -- With a Content-Length nginx sends the body as is, not chunked, like h2o, bffgate and Node.
    ngx.header.content_length = #body
    ngx.print(body)
end
