-- hello.lua: GET /hello: {"message":"hello, world"}, encoded by cjson from a table on every request.
require "respond"(200, { message = "hello, world" })
