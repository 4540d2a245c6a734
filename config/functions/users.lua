-- users: the user service of the example shop (served on /internal, called over HTTP by the home screens).
local users = {
  u1 = { id = "u1", name = "Ada", email = "ada@example.com", tier = "gold", cartId = "c1" },
  u2 = { id = "u2", name = "Brian", email = "brian@example.com", tier = "basic", cartId = "c2" },
  u3 = { id = "u3", name = "Chen", email = "chen@example.com", tier = "basic", cartId = "gone" },
}

return { handler = function(event, ctx)
  local u = users[event.pathParameters.id]
  if not u then
    return { statusCode = 404, body = { error = "no such user" } }
  end
  return u
end }
