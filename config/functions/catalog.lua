-- catalog: the product list, shaped for each frontend (web: full records, mobile: compact).
local products = {
  { id = "1", name = "Espresso cup", priceCents = 1999, description = "Porcelain, 80 ml, dishwasher safe.",
    image = "/assets/img/cup.jpg", stock = 42 },
  { id = "2", name = "Pour-over kettle", priceCents = 4950, description = "Gooseneck spout, 1 l, any hob.",
    image = "/assets/img/kettle.jpg", stock = 7 },
  { id = "3", name = "Hand grinder", priceCents = 12900, description = "Conical steel burrs, 40 settings.",
    image = "/assets/img/grinder.jpg", stock = 0 },
}

local M = {}

function M.handler(event, ctx)
  local limit = tonumber(event.query.limit) or #products
  local items = json.array({})
  for i = 1, math.min(limit, #products) do
    local p = products[i]
    if event.frontend == "mobile" then
      items[#items + 1] = { id = p.id, name = p.name, price = string.format("%.2f", p.priceCents / 100),
                            available = p.stock > 0 }
    else
      items[#items + 1] = { id = p.id, name = p.name, priceCents = p.priceCents, description = p.description,
                            image = p.image, stock = p.stock }
    end
  end
  if event.frontend == "mobile" then
    return { items = items }
  end
  return { items = items, total = #products, currency = "EUR" }
end

return M
