-- product: one product by id; an unknown id is a 404 with a JSON error body.
local products = {
  ["1"] = { name = "Espresso cup", priceCents = 1999, stock = 42 },
  ["2"] = { name = "Pour-over kettle", priceCents = 4950, stock = 7 },
  ["3"] = { name = "Hand grinder", priceCents = 12900, stock = 0 },
}

local M = {}

function M.handler(event, ctx)
  local id = event.pathParameters.id
  local p = products[id]
  if not p then
    ctx.log("info", "unknown product", { id = id })
    return { statusCode = 404, body = { error = "no product with id " .. id, requestId = ctx.requestId } }
  end
  if event.frontend == "mobile" then
    return { id = id, name = p.name, price = string.format("%.2f", p.priceCents / 100), available = p.stock > 0 }
  end
  return {
    statusCode = 200,
    headers = { ["cache-control"] = "max-age=60" },
    body = { id = id, name = p.name, priceCents = p.priceCents, stock = p.stock,
             links = { self = "/web/products/" .. id, quote = "/web/quote/" .. id } },
  }
end

return M
