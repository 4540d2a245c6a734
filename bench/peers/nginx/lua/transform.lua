-- transform.lua: POST /transform: reshapes an order (about 2 KB of JSON) into
-- {"orderId", "customer", "itemCount", "totalCents", "skus"}; 400 when the body is not JSON or not an order.
local cjson = require "cjson.safe"
local respond = require "respond"

ngx.req.read_body()
-- client_body_buffer_size equals client_max_body_size in nginx.conf, so the body is never in a temp file.
local order = cjson.decode(ngx.req.get_body_data() or "")
if type(order) ~= "table" or type(order.items) ~= "table" then
    return respond(400, { error = "send an order as JSON" })
end

local items = order.items
local total, skus = 0, {}
for i = 1, #items do
    local item = items[i]
    total = total + item.qty * item.priceCents
    skus[i] = item.sku
end
local customer = type(order.customer) == "table" and order.customer.name or nil
if #skus == 0 then
    -- Debian's lua-cjson (2.1.0) encodes an empty table as {} and has no empty-array marker: spell it out.
    local body = cjson.encode({ orderId = order.id, customer = customer, itemCount = 0, totalCents = 0 })
    body = body:sub(1, -2) .. (#body > 2 and ',' or '') .. '"skus":[]}'
    ngx.header.content_length = #body
    return ngx.print(body)
end
respond(200, { orderId = order.id, customer = customer, itemCount = #items, totalCents = total, skus = skus })
