// The published Umbraco Heartcore Node.js client, used unchanged, against the relation registry.
// Env: BASE_URL (the service), PROJECT (its project alias), API_KEY (all scopes), TOKEN (a bearer JWT
// for PROJECT with relations:read and relations:write). Exits non-zero on the first failed check.
'use strict'

const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { Client } = require('@umbraco/headless-client')

const { BASE_URL, PROJECT, API_KEY, TOKEN } = process.env
const TYPE = 'relateDocumentOnCopy'
const TYPE_ID = '4cbeb612-e689-3563-b755-bf3ede295433'

async function failure (promise) {
  try {
    await promise
  } catch (error) {
    assert.ok(error.response, `no HTTP response: ${error.message}`)
    return { status: error.response.status, body: error.data }
  }
  assert.fail('the request succeeded')
}

async function flow (client, label) {
  const relation = client.management.relation
  const parentId = randomUUID()
  const childId = randomUUID()

  const created = await relation.create({ parentId, childId, relationTypeAlias: TYPE, comment: label })
  assert.equal(typeof created._id, 'number')
  assert.equal(created.parentId, parentId)
  assert.equal(created.childId, childId)
  assert.equal(created.relationTypeAlias, TYPE)
  assert.equal(created.comment, label)
  assert.equal(created._links.self.href, `${BASE_URL}/relation/${created._id}`)

  const byId = await relation.byId(created._id)
  assert.deepEqual(byId, created)

  const byParent = await relation.byParent(parentId)
  assert.equal(byParent.totalItems, 1)
  assert.equal(byParent.totalPages, 1)
  assert.equal(byParent.page, 1)
  assert.deepEqual(byParent.items.map(item => item._id), [created._id])

  const byChild = await relation.byChild(childId)
  assert.equal(byChild.totalItems, 1)
  assert.deepEqual(byChild.items.map(item => item._id), [created._id])

  const byAlias = await relation.byAlias(TYPE)
  assert.ok(byAlias.totalItems >= 1)
  assert.ok(byAlias.items.some(item => item._id === created._id), 'created relation listed by alias')

  const type = await client.management.relationType.byAlias(TYPE)
  assert.equal(type._id, TYPE_ID)
  assert.equal(type.alias, TYPE)
  assert.equal(type.name, 'Relate Document On Copy')
  assert.equal(type.isBidirectional, true)

  const duplicate = await failure(relation.create({ parentId, childId, relationTypeAlias: TYPE }))
  assert.equal(duplicate.status, 422)
  assert.equal(duplicate.body.error.code, 'ValidationFailed')
  assert.equal(
    duplicate.body.error.message,
    'Validation error occurred when trying to save or update the relation.'
  )
  assert.ok(Array.isArray(duplicate.body.error.details.errors.childId))

  const deleted = await relation.delete(created._id)
  assert.equal(deleted._id, created._id)

  const gone = await failure(relation.byId(created._id))
  assert.equal(gone.status, 404)
  assert.equal(gone.body.error.code, 'NotFound')
  assert.equal(gone.body.error.message, `Relation with id '${created._id}' could not be found.`)

  const empty = await relation.byParent(parentId)
  assert.equal(empty.totalItems, 0)
  return created._id
}

async function main () {
  for (const name of ['BASE_URL', 'PROJECT', 'API_KEY', 'TOKEN']) {
    assert.ok(process.env[name], `${name} is not set`)
  }
  const clients = {
    apiKey: new Client({ apiProxyUrl: BASE_URL, projectAlias: PROJECT, apiKey: API_KEY }),
    accessTokenResolver: new Client({ apiProxyUrl: BASE_URL, projectAlias: PROJECT, accessTokenResolver: () => TOKEN }),
    'apiKey without projectAlias': new Client({ apiProxyUrl: BASE_URL, apiKey: API_KEY })
  }
  const results = {}
  for (const [label, client] of Object.entries(clients)) {
    results[label] = await flow(client, label)
  }

  const refused = await failure(
    new Client({ apiProxyUrl: BASE_URL, projectAlias: PROJECT, apiKey: 'not-a-key' }).management.relation.byId(1)
  )
  assert.equal(refused.status, 401)
  assert.equal(refused.body.error.message, 'Authorization has been denied for this request.')

  console.log(JSON.stringify({ ok: true, flows: Object.keys(results) }))
}

main().catch(error => {
  console.error(error && error.stack ? error.stack : error)
  process.exit(1)
})
