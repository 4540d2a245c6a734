// server.js: the Fastify peer for bench/compare.sh: the same HTTP contract as bffgate's bench routes,
// written the way a Fastify user would (plain handlers, no response schemas), one process, no cluster.
// Env: PORT (required), UPSTREAM_PORT (for /fanout; required). Listens on 127.0.0.1 only.
'use strict'

const fastify = require('fastify')
const { Pool } = require('undici')
const { createVerifier } = require('fast-jwt')

const PORT = Number(process.env.PORT)
const UPSTREAM_PORT = Number(process.env.UPSTREAM_PORT)
if (!Number.isInteger(PORT) || PORT <= 0 || !Number.isInteger(UPSTREAM_PORT) || UPSTREAM_PORT <= 0) {
  console.error('usage: PORT=<port> UPSTREAM_PORT=<port> node server.js')
  process.exit(2)
}

const JWT_SECRET = 'bench-only-secret-not-for-production-0123456789'
const ROUTE_COUNT = 10000

// JWT: fast-jwt (the library behind @fastify/jwt). Every request is verified from scratch: the verifier's
// token cache is off (cache: false), so the HMAC-SHA256 runs each time, as in bffgate and the nginx peer.
// It compares signatures with crypto.timingSafeEqual, checks exp against the clock, and only accepts HS256.
const verifyToken = createVerifier({
  key: JWT_SECRET,
  algorithms: ['HS256'],
  requiredClaims: ['exp', 'sub'],
  cache: false
})

// /fanout: undici's connection pool (keep-alive, one request per connection at a time); no cap on the
// number of connections, like nginx's upstream block with keepalive and bffgate's max_connections 4096.
const upstream = new Pool(`http://127.0.0.1:${UPSTREAM_PORT}`, {
  connections: null,
  keepAliveTimeout: 60000,
  keepAliveMaxTimeout: 600000
})

const app = fastify({ logger: false })

app.get('/hello', (request, reply) => {
  reply.send({ message: 'hello, world' })
})

app.post('/transform', (request, reply) => {
  // Fastify's JSON body parser has already answered 400 to malformed JSON; this catches valid JSON that is
  // not an order.
  const order = request.body
  if (order === null || typeof order !== 'object' || !Array.isArray(order.items)) {
    reply.code(400).send({ error: 'send an order as JSON' })
    return
  }
  let totalCents = 0
  const skus = new Array(order.items.length)
  for (let i = 0; i < order.items.length; i++) {
    const item = order.items[i]
    totalCents += item.qty * item.priceCents
    skus[i] = item.sku
  }
  reply.send({
    orderId: order.id,
    customer: order.customer != null ? order.customer.name : undefined,
    itemCount: order.items.length,
    totalCents,
    skus
  })
})

async function fetchUpstreamJson (path) {
  const { statusCode, body } = await upstream.request({ path, method: 'GET' })
  if (statusCode !== 200) {
    await body.dump()
    throw new Error(`upstream ${path} answered ${statusCode}`)
  }
  return body.json()
}

app.get('/fanout', async (request, reply) => {
  try {
    const [a, b, c] = await Promise.all([
      fetchUpstreamJson('/delay/10/a'),
      fetchUpstreamJson('/delay/10/b'),
      fetchUpstreamJson('/delay/10/c')
    ])
    return { a, b, c }
  } catch (err) {
    reply.code(502)
    return { error: 'upstream call failed' }
  }
})

app.get('/jwt/hello', (request, reply) => {
  const header = request.headers.authorization
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) {
    reply.code(401).send({ error: 'missing bearer token' })
    return
  }
  let claims
  try {
    claims = verifyToken(header.slice(7))
  } catch (err) {
    reply.code(401).send({ error: 'invalid token' })
    return
  }
  reply.send({ message: 'hello, world', sub: claims.sub })
})

// 10,000 distinct routes, registered one by one at start-up (find-my-way builds its radix tree from them).
for (let n = 0; n < ROUTE_COUNT; n++) {
  app.get(`/r${n}/item`, (request, reply) => {
    reply.send({ route: n })
  })
}

app.listen({ host: '127.0.0.1', port: PORT }).catch((err) => {
  console.error(err)
  process.exit(1)
})
