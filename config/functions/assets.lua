-- assets: shows the wildcard parameter (a stand-in for a static asset lookup).
local M = {}

function M.handler(event, ctx)
  return {
    statusCode = 200,
    headers = { ["content-type"] = "text/plain; charset=utf-8" },
    body = "asset: " .. (event.pathParameters.path or "") .. "\n",
  }
end

return M
