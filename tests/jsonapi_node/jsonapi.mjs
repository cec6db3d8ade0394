// kitsu (a published JSON:API client, pinned in package-lock.json), used as its documentation shows,
// against the relation registry's JSON:API child lists: write a list, read it back (paged, following
// `links.next`), and read the error documents. Env: BASE_URL, API_KEY (relations:read and :write),
// PARENT (a GUID), MANY (a type of child object type ARTICLE whose alias kitsu's URL helpers keep:
// `articles`), ONE (cardinality one, child object type PERSON). Prints one JSON line; exits non-zero
// on the first failed check.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import Kitsu from 'kitsu'

const { BASE_URL, API_KEY, PARENT, MANY, ONE } = process.env
const options = { baseURL: BASE_URL, headers: { 'Api-Key': API_KEY } }
const api = new Kitsu(options) // pluralises types: it sends `articles`
const singular = new Kitsu({ ...options, pluralize: false }) // sends types as given: `person`
const many = `relation/parent/${PARENT}/${MANY}`
const one = `relation/parent/${PARENT}/${ONE}`

async function failure (promise) {
  try {
    await promise
  } catch (error) {
    assert.ok(error.response, `no HTTP response: ${error.message}`)
    return { status: error.response.status, errors: error.errors }
  }
  assert.fail('the request succeeded')
}

const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
const ids = (...children) => children.map(id => ({ id }))

// write: replace, add, remove (kitsu's bulk form, the JSON:API relationship documents)
const replaced = await api.request({ method: 'PATCH', url: many, type: 'article', body: ids(a, b, c) })
assert.equal(replaced.status, 204)
assert.equal((await api.request({ method: 'POST', url: many, type: 'article', body: ids(d, a) })).status, 204)
assert.equal((await api.delete(many, [b])).status, 204)

// read it back: resource linkage in list order, the total, and the paging links
const read = await api.request({ url: many })
assert.equal(read.status, 200)
assert.deepEqual(read.data.map(item => [item.type, item.id]), [a, c, d].map(id => ['article', id]))
assert.equal(read.meta.total, 3)
assert.equal(read.links.prev, null)

const seen = []
let page = await api.request({ url: many, params: { page: { size: 2 } } })
assert.equal(page.data.length, 2)
for (;;) {
  seen.push(...page.data.map(item => item.id))
  if (!page.links.next) break
  page = await api.request({ url: page.links.next })
}
assert.deepEqual(seen, [a, c, d])

// what was read is accepted back as it is
const back = await singular.request({ method: 'PATCH', url: many, type: 'article', body: read.data.reverse() })
assert.equal(back.status, 204)
assert.deepEqual((await api.request({ url: many })).data.map(item => item.id), [d, c, a])

// error documents, parsed by kitsu into `error.errors`
const conflict = await failure(api.request({ method: 'POST', url: many, type: 'comment', body: ids(b) }))
assert.equal(conflict.status, 409)
assert.equal(conflict.errors.length, 1)
assert.equal(conflict.errors[0].status, '409')
assert.equal(conflict.errors[0].code, 'Conflict')
const invalid = await failure(api.request({ method: 'PATCH', url: many, type: 'article', body: ids('x', 'y') }))
assert.equal(invalid.status, 422)
assert.deepEqual(invalid.errors.map(error => error.source.pointer), ['/data/0/id', '/data/1/id'])
const missing = await failure(api.request({ url: `relation/parent/${PARENT}/nosuchtype` }))
assert.equal(missing.status, 404)
assert.equal(missing.errors[0].code, 'NotFound')
const anonymous = new Kitsu({ baseURL: BASE_URL })
const unauthorized = await failure(anonymous.request({ url: many }))
assert.deepEqual([unauthorized.status, unauthorized.errors[0].code], [401, 'Unauthorized'])

// a to-one relationship: an identifier, then null
const person = randomUUID()
const set = await singular.request({ method: 'PATCH', url: one, type: 'person', body: { id: person } })
assert.equal(set.status, 204)
assert.deepEqual((await singular.request({ url: one })).data, { type: 'person', id: person })
assert.equal((await singular.request({ method: 'PATCH', url: one, type: 'person', body: null })).status, 204)
assert.equal((await singular.request({ url: one })).data, null)

console.log(JSON.stringify({ ok: true, read: seen.length, errors: [409, 422, 404, 401] }))
