-- recommend: picks products for a user (its input is the user object, from the composition).
local catalog = {}
for i = 1, 30 do
  catalog[i] = { id = tostring(i), name = "Product " .. i, score = (i * 37) % 100 }
end

return { handler = function(event, ctx)
  local user = event.json and event.json.user or {}
  local items = json.array({})
  for _, p in ipairs(catalog) do
    if user.tier == "gold" or p.score >= 50 then
      items[#items + 1] = { id = p.id, name = p.name, score = p.score }
    end
  end
  table.sort(items, function(a, b) return a.score > b.score end)
  return { forUser = user.id, items = items }
end }
