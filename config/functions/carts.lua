-- carts: the cart service of the example shop (served on /internal). Cart "gone" is unavailable (503), so the
-- home screen shows its fallback for that user.
local carts = {
  c1 = { id = "c1", items = { { id = "2", qty = 1 }, { id = "1", qty = 4 } } },
  c2 = { id = "c2", items = json.array({}) },
}

return { handler = function(event, ctx)
  local c = carts[event.pathParameters.id]
  if not c then
    return { statusCode = 503, body = { error = "cart service unavailable" } }
  end
  return c
end }
