-- work: a route whose capacity is known: each call waits 5 ms (concurrency 4 -> 800 req/s).
return {
  handler = function(event, ctx)
    ctx.sleep(5)
    return { done = true }
  end,
}
