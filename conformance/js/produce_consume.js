#!/usr/bin/env node
'use strict'
const DOC = `
produce_consume.js --bootstrap B --topic T --records N [--partitions P] [--no-create-topic]
    [--compression none|gzip|snappy|lz4|zstd] [--value-bytes S] [--own-traceparent-every K]
    [--added-header NAME ...] [--ca-pem F [--cert-pem F --key-pem F]] [--expect-failure]
    [--log-level warn] [--timeout-ms MS]

kafkajs producer and consumer round trip. Creates T (P partitions, default 3) through B unless
--no-create-topic, produces N records (acks=-1, batches of 100 sent one after another, record i
to partition i % P): key "key-<i>", a binary value of S bytes (default 200, all byte values,
from the large-record value spec with seed 7), headers in this order: [traceparent (own, every
K-th record, when --own-traceparent-every K)], strait-index=<i>, dup=a, dup=b, bin=<bytes 0..255>.
Then a consumer in a fresh group reads T from the beginning until every record was seen, and
checks each record: key, value (SHA-256), offset = the one its acknowledgement gave, and its
headers in order once the names given with --added-header (headers a proxy adds, e.g.
traceparent, strait-client-id) are set aside (a record with its own traceparent keeps it first).
kafkajs hands headers over as an object: the order checked is that of their first occurrence,
repeated keys in order.

TLS: --ca-pem (hostname verification on), client certificate --cert-pem/--key-pem.
--expect-failure: ok iff the client fails (e.g. a refused certificate) and no record is
acknowledged.

Output: {"type":"record","index","partition","offset","added":[[k,v],...],"traceparent"} per
consumed record; {"type":"mismatch","index","what","got","want"} per failed check; summary
acked, consumed, verified, duplicates, missing, mismatches, foreign; with --expect-failure
first_exception, first_message.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  topic: { required: true },
  records: { required: true, int: true },
  partitions: { int: true, default: '3' },
  'no-create-topic': { type: 'boolean' },
  compression: { default: 'none' },
  'value-bytes': { int: true, default: '200' },
  'own-traceparent-every': { int: true, default: '0' },
  'added-header': { multiple: true, default: [] },
  'ca-pem': {},
  'cert-pem': {},
  'key-pem': {},
  'expect-failure': { type: 'boolean' },
  'log-level': {},
}

const BIN = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

function ownTraceparent(i) {
  const trace = (0xabc0000 + i + 1).toString(16).padStart(32, '0')
  const span = (0xdef000 + i + 1).toString(16).padStart(16, '0')
  return `00-${trace}-${span}-01`
}

function expectedHeaders(i, every) {
  const h = []
  if (every > 0 && i % every === 0) h.push(['traceparent', Buffer.from(ownTraceparent(i))])
  h.push(['strait-index', Buffer.from(String(i))], ['dup', Buffer.from('a')], ['dup', Buffer.from('b')])
  h.push(['bin', BIN])
  return h
}

/** kafkajs's header object as [key, Buffer] pairs (repeated keys in order). */
function headerList(headers) {
  const out = []
  for (const [k, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one === null || one === undefined ? null : Buffer.from(one)])
  }
  return out
}

function asObject(list) {
  const obj = {}
  for (const [k, v] of list) {
    if (k in obj) obj[k] = [].concat(obj[k], v)
    else obj[k] = v
  }
  return obj
}

async function produce(args, deadline, kafka, acked) {
  const { partitions, records } = args
  const compression = L.compressionType(args.compression)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  L.CONTEXT.phase = 'producer connect'
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  try {
    L.CONTEXT.phase = 'produce'
    for (let start = 0; start < records; start += 100) {
      const batch = []
      for (let i = start; i < Math.min(records, start + 100); i++) {
        batch.push({
          index: i,
          message: {
            key: `key-${i}`,
            value: L.largeValue(7, i, args.valueBytes),
            partition: i % partitions,
            headers: asObject(expectedHeaders(i, args.ownTraceparentEvery)),
          },
        })
      }
      const result = await L.within(
        producer.send({ topic: args.topic, acks: -1, compression, messages: batch.map(b => b.message) }),
        deadline.remaining(),
        'send'
      )
      const base = new Map(result.map(r => [r.partition, BigInt(r.baseOffset)]))
      const rank = new Map()
      for (const b of batch) {
        const p = b.message.partition
        const n = rank.get(p) || 0n
        rank.set(p, n + 1n)
        if (!base.has(p)) throw new Error(`no acknowledgement for partition ${p} in ${JSON.stringify(result)}`)
        acked.set(b.index, { partition: p, offset: (base.get(p) + n).toString() })
      }
    }
  } finally {
    await producer.disconnect().catch(e => L.log(`producer disconnect: ${e}`))
  }
}

async function consume(args, deadline, kafka, acked, counts) {
  const every = args.ownTraceparentEvery
  const added = new Set(args.addedHeader)
  const seen = new Map()
  const consumer = kafka.consumer({ groupId: `strait-kafkajs-pc-${process.pid}-${Date.now()}`, allowAutoTopicCreation: false })
  const mismatch = (index, what, got, want) => {
    counts.mismatches++
    if (counts.mismatches <= 20) L.emit({ type: 'mismatch', index, what, got, want })
  }
  L.CONTEXT.phase = 'consumer connect'
  await L.within(consumer.connect(), deadline.remaining(), 'consumer connect')
  try {
    await consumer.subscribe({ topic: args.topic, fromBeginning: true })
    L.CONTEXT.phase = 'consume'
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        counts.consumed++
        const list = headerList(message.headers)
        const idx = list.find(([k]) => k === 'strait-index')
        const i = idx && idx[1] ? Number(idx[1].toString()) : NaN
        if (!Number.isInteger(i) || i < 0 || i >= args.records) {
          counts.foreign++
          return
        }
        seen.set(i, (seen.get(i) || 0) + 1)
        if (seen.get(i) > 1) {
          counts.duplicates++
          return
        }
        const key = message.key === null ? null : message.key.toString()
        let ok = true
        const check = (what, got, want) => {
          if (got !== want) {
            ok = false
            mismatch(i, what, got, want)
          }
        }
        check('key', key, `key-${i}`)
        check('value sha256', message.value === null ? null : L.sha256(message.value), L.sha256(L.largeValue(7, i, args.valueBytes)))
        const a = acked.get(i)
        check('partition', partition, a ? a.partition : null)
        check('offset', message.offset, a ? a.offset : null)
        const hasOwn = every > 0 && i % every === 0
        const own = list.filter(([k], at) => !added.has(k) || (hasOwn && at === 0 && k === 'traceparent'))
        const show = l => l.map(([k, v]) => [k, v === null ? null : k === 'bin' ? v.toString('hex') : v.toString()])
        check('headers', JSON.stringify(show(own)), JSON.stringify(show(expectedHeaders(i, every))))
        const addedList = show(list.filter(([k], at) => added.has(k) && !(hasOwn && at === 0 && k === 'traceparent')))
        const tps = show(list.filter(([k]) => k === 'traceparent')).map(([, v]) => v)
        L.emit({ type: 'record', index: i, partition, offset: Number(message.offset), added: addedList, traceparent: tps })
        if (ok) counts.verified++
      },
    })
    await L.until(deadline, `all ${args.records} records`, () => seen.size >= args.records)
  } finally {
    counts.missing = args.records - seen.size
    await consumer.disconnect().catch(e => L.log(`consumer disconnect: ${e}`))
  }
}

L.CONTEXT.driver = 'produce_consume.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  if (args.records < 0 || args.partitions < 1 || args.valueBytes < 0) throw new L.Usage('--records, --value-bytes >= 0, --partitions >= 1')
  L.compressionType(args.compression) // a usage error before any connection
  const kafka = L.client(args)
  const acked = new Map()
  const counts = { consumed: 0, verified: 0, duplicates: 0, missing: args.records, mismatches: 0, foreign: 0 }
  if (args.expectFailure) {
    try {
      await produce(args, deadline, kafka, acked)
    } catch (e) {
      const info = L.errorInfo(e)
      L.emit(Object.assign({ type: 'error', phase: L.CONTEXT.phase }, info))
      delete L.CONTEXT.phase
      const ok = acked.size === 0
      return L.summary(ok, { acked: acked.size, first_exception: info.exception, first_message: L.errorText(e), failed_in: info.phase, elapsed_ms: deadline.elapsedMs(), ...(ok ? {} : { error: 'records were acknowledged' }) })
    }
    delete L.CONTEXT.phase
    return L.summary(false, { acked: acked.size, error: 'expected a failure, the client succeeded' })
  }
  if (!args.noCreateTopic) {
    const admin = kafka.admin()
    L.CONTEXT.phase = 'create topic'
    await L.within(admin.connect(), deadline.remaining(), 'admin connect')
    await L.within(admin.createTopics({ topics: [{ topic: args.topic, numPartitions: args.partitions }], waitForLeaders: true }), deadline.remaining(), 'createTopics')
    await admin.disconnect()
  }
  await produce(args, deadline, kafka, acked)
  await consume(args, deadline, kafka, acked, counts)
  delete L.CONTEXT.phase
  const ok = counts.verified === args.records && counts.duplicates === 0 && counts.mismatches === 0 && counts.missing === 0
  return L.summary(ok, { acked: acked.size, ...counts, elapsed_ms: deadline.elapsedMs(), ...(ok ? {} : { error: 'round trip checks failed' }) })
})
