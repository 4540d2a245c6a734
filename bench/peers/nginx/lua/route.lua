-- route.lua: one of the 10,000 `location = /rN/item` blocks (gen-routes.sh): answers {"route": N}, N set by
-- the location as $route_id.
require "respond"(200, { route = tonumber(ngx.var.route_id) })
