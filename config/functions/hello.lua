-- hello: the smallest Lua function; a table without statusCode is a 200 JSON body.
local M = {}

function M.handler(event, ctx)
  return { message = "hello from Lua", frontend = event.frontend, requestId = ctx.requestId }
end

return M
