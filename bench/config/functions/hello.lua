-- hello: the benchmark's Lua hello, a small JSON object.
return {
  handler = function(event, ctx)
    return { message = "hello from Lua" }
  end,
}
