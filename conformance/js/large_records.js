#!/usr/bin/env node
'use strict'
const DOC = `
large_records.js produce --bootstrap B --topic T --count N --size BYTES [--seed S] [--partition P]
    [--key-prefix K]
large_records.js consume --bootstrap B --topic T --expect N [--group G] [--read-uncommitted]
    [--stop-after K]
  (both: --timeout-s S, default 120, or --timeout-ms MS; --help)

Large records with an unmodified kafkajs client; the twin of conformance/python/large_records.py
and the Java LargeRecords driver: same values, same JSON lines (the options listed here).

Value spec (shared): value(seed, i, size) is the first size bytes of SHA-256(S||I||B0) ||
SHA-256(S||I||B1) || ..., S = seed, I = record index, Bk = block counter, each 8 bytes
big-endian. Self-check at start: sha256(value(1, 0, 1000)) =
739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e.
Key = K + str(i); one header ("n", str(i)) per record.

produce: to T (must exist), one record per send, acks -1, kafkajs defaults otherwise: kafkajs
  has no client-side request or record size limit, so no size setting is changed.
  Output {"type":"acked","index","partition","offset","size","sha256"} per acknowledged record;
  {"type":"error","index","error","retriable"} per failed one; summary count, acked, errors.
consume: kafkajs consumers always belong to a group: without --group a throwaway one
  (strait-large-unused-<random>) that never commits; with --group G, each record's offset + 1 is
  committed after it is printed. From the beginning; kafkajs defaults otherwise (maxBytes 10 MiB,
  maxBytesPerPartition 1 MiB: a broker returns a first batch larger than these whole).
  read_committed is kafkajs's default; --read-uncommitted. Stops after N records.
  Output {"type":"record","partition","offset","size","sha256","headers":[[k,v],...],"key",
  "index"} per record; summary count, bytes. --stop-after K: exit at once after the K-th record
  (no disconnect, no LeaveGroup, like a crash).
Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
`
const L = require('./lib')

L.CONTEXT.driver = 'large_records.js'
const SELF_CHECK = '739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e'
const mode = process.argv[2]
if (mode !== 'produce' && mode !== 'consume') {
  if (mode === '--help' || mode === '-h') {
    process.stdout.write(DOC.trim() + '\n')
    process.exit(0)
  }
  process.stderr.write(DOC.trim() + '\nerror: MODE must be produce or consume\n')
  L.summary(false, { error: 'usage: missing mode: produce or consume' })
  process.exit(L.EXIT_USAGE)
}
process.argv.splice(2, 1)
// --timeout-s S is the Python and Java drivers' spelling: as --timeout-ms.
{
  const at = process.argv.indexOf('--timeout-s')
  if (at > 0) process.argv.splice(at, 2, '--timeout-ms', String(Math.round(Number(process.argv[at + 1]) * 1000)))
}

const COMMON = {
  bootstrap: { required: true },
  topic: { required: true },
  'timeout-ms': { default: '120000' },
  'log-level': {},
}
const OPTIONS =
  mode === 'produce'
    ? Object.assign({}, COMMON, {
        count: { required: true, int: true },
        size: { required: true, int: true },
        seed: { int: true, default: '1' },
        partition: { int: true },
        'key-prefix': { default: '' },
      })
    : Object.assign({}, COMMON, {
        expect: { required: true, int: true },
        group: {},
        'read-uncommitted': { type: 'boolean' },
        'stop-after': { int: true },
      })

async function produce(args, deadline) {
  if (args.count < 0 || args.size < 0) throw new L.Usage('--count and --size must be >= 0')
  const kafka = L.client(args)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  Object.assign(L.CONTEXT, { count: args.count, size: args.size, seed: args.seed, size_settings: {} })
  L.CONTEXT.phase = 'connect'
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  L.CONTEXT.phase = 'produce'
  let acked = 0
  let errors = 0
  for (let i = 0; i < args.count && !deadline.expired(); i++) {
    const value = L.largeValue(args.seed, i, args.size)
    const sha = L.sha256(value)
    const message = { key: args.keyPrefix + i, value, headers: { n: String(i) } }
    if (args.partition !== undefined) message.partition = args.partition
    try {
      const [r] = await L.within(producer.send({ topic: args.topic, acks: -1, messages: [message] }), deadline.remaining(), `send of record ${i}`)
      acked++
      L.emit({ type: 'acked', index: i, partition: r.partition, offset: Number(r.baseOffset), size: args.size, sha256: sha })
    } catch (e) {
      errors++
      L.emit({ type: 'error', index: i, error: L.errorText(e), retriable: !!(e && e.retriable) })
    }
  }
  await producer.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const ok = acked === args.count && errors === 0
  return L.summary(ok, { acked, aborted: 0, errors, pending: 0, unsent: args.count - acked - errors, elapsed_ms: deadline.elapsedMs(), ...(ok ? {} : { error: `${errors} error(s), ${acked} of ${args.count} acknowledged` }) })
}

async function consume(args, deadline) {
  if (args.expect < 0) throw new L.Usage('--expect must be >= 0')
  if (args.stopAfter !== undefined && args.stopAfter < 1) throw new L.Usage('--stop-after must be >= 1')
  const kafka = L.client(args)
  const groupId = args.group || `strait-large-unused-${process.pid}-${Date.now()}`
  const consumer = kafka.consumer({ groupId, readUncommitted: !!args.readUncommitted, allowAutoTopicCreation: false })
  Object.assign(L.CONTEXT, { expect: args.expect, group: args.group || null, isolation: args.readUncommitted ? 'read_uncommitted' : 'read_committed' })
  let count = 0
  let bytes = 0
  L.CONTEXT.phase = 'connect'
  await L.within(consumer.connect(), deadline.remaining(), 'consumer connect')
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  L.CONTEXT.phase = 'consume'
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (count >= args.expect) return
      const v = message.value
      const headers = []
      let index = null
      for (const [k, hv] of Object.entries(message.headers || {})) {
        for (const one of Array.isArray(hv) ? hv : [hv]) {
          const text = one == null ? null : one.toString()
          headers.push([k, text])
          if (k === 'n' && index === null && text !== null && /^\d+$/.test(text)) index = Number(text)
        }
      }
      L.emit({
        type: 'record',
        partition,
        offset: Number(message.offset),
        size: v == null ? null : v.length,
        sha256: v == null ? null : L.sha256(v),
        headers,
        key: message.key == null ? null : message.key.toString(),
        index,
      })
      count++
      bytes += v == null ? 0 : v.length
      if (args.group) await consumer.commitOffsets([{ topic: args.topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      if (args.stopAfter !== undefined && count >= args.stopAfter) {
        delete L.CONTEXT.phase
        L.summary(true, { count, bytes, halted: true, elapsed_ms: deadline.elapsedMs() })
        L.exit(L.EXIT_OK) // no disconnect, no LeaveGroup, no further commit
        await new Promise(() => {})
      }
    },
  })
  let error
  await L.until(deadline, `${args.expect} records`, () => count >= args.expect, 50).catch(e => (error = e))
  await consumer.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const fields = { count, bytes, elapsed_ms: deadline.elapsedMs() }
  if (error) fields.error = `read ${count} of ${args.expect} record(s) within the timeout (${deadline.timeoutMs} ms)`
  return L.summary(!error, fields)
}

L.CONTEXT.driver = 'large_records.js'
L.CONTEXT.mode = mode
L.main(DOC, OPTIONS, async (args, deadline) => {
  const got = L.sha256(L.largeValue(1, 0, 1000))
  if (got !== SELF_CHECK) throw new Error(`value generator self-check failed: ${got}, expected ${SELF_CHECK}`)
  return mode === 'produce' ? produce(args, deadline) : consume(args, deadline)
})
