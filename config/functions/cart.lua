-- cart: prices a cart sent as JSON ({"items":[{"id":"1","qty":2}]}); bad carts get a 422 JSON error.
local prices = { ["1"] = 1999, ["2"] = 4950, ["3"] = 12900 }

local M = {}

local function reject(ctx, message)
  return { statusCode = 422, body = { error = message, requestId = ctx.requestId } }
end

function M.handler(event, ctx)
  local cart = event.json
  if type(cart) ~= "table" or type(cart.items) ~= "table" then
    return reject(ctx, "send a JSON body with an items list")
  end
  local total, lines = 0, json.array({})
  for i, item in ipairs(cart.items) do
    local unit = prices[item.id]
    local qty = math.tointeger(item.qty)
    if not unit then return reject(ctx, "items[" .. (i - 1) .. "]: unknown product") end
    if not qty or qty < 1 or qty > 100 then return reject(ctx, "items[" .. (i - 1) .. "]: qty must be 1..100") end
    total = total + unit * qty
    lines[#lines + 1] = { id = item.id, qty = qty, lineCents = unit * qty }
  end
  if event.frontend == "mobile" then
    return { count = #lines, total = string.format("%.2f", total / 100) }
  end
  return { lines = lines, totalCents = total, currency = "EUR" }
end

return M
