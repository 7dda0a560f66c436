#!/usr/bin/env node
'use strict'
const DOC = `
transactions.js --bootstrap B --topic T [--transactions N] [--per-transaction P] [--abort-every K]
    [--compression none|gzip|snappy|lz4|zstd] [--timeout-ms MS]

kafkajs transactions: a transactional producer (transactionalId strait-kafkajs-txn-<random>,
idempotent, maxInFlightRequests 1) writes N transactions (default 30) of P records (default 50)
to T (must exist), one send each; transaction t is aborted when t % K == 1 (default K 3: every
third, never the last), else committed. Values "c-<t>-<k>" (committed) or "a-<t>-<k>"
(aborted), key "<t>-<k>". Then a read_committed consumer (kafkajs's default isolation) in a
fresh group reads T from the beginning until it has as many records as were committed; since
the last transaction is committed, every aborted record lies before the last committed one,
so any aborted record delivered is seen.

Output: {"type":"transaction","t","outcome":"committed"|"aborted"}; summary committed,
aborted (records), consumed, distinct, duplicates, aborted_seen, missing, foreign.
ok: each committed record read once, no aborted record read.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  topic: { required: true },
  transactions: { int: true, default: '30' },
  'per-transaction': { int: true, default: '50' },
  'abort-every': { int: true, default: '3' },
  compression: { default: 'none' },
  'timeout-ms': { default: '120000' },
  'log-level': {},
}

L.CONTEXT.driver = 'transactions.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  const { transactions: n, perTransaction: per, abortEvery: every } = args
  if (n < 1 || per < 1 || every < 2) throw new L.Usage('--transactions >= 1, --per-transaction >= 1, --abort-every >= 2')
  const compression = L.compressionType(args.compression)
  const kafka = L.client(args)
  const topic = args.topic
  const producer = kafka.producer({
    transactionalId: `strait-kafkajs-txn-${process.pid}-${Date.now()}`,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  })
  L.CONTEXT.phase = 'producer connect'
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  const committed = new Set()
  let aborted = 0
  L.CONTEXT.phase = 'transactions'
  for (let t = 0; t < n; t++) {
    const abort = t % every === 1
    const prefix = abort ? 'a' : 'c'
    const messages = []
    for (let k = 0; k < per; k++) messages.push({ key: `${t}-${k}`, value: `${prefix}-${t}-${k}` })
    const txn = await L.within(producer.transaction(), deadline.remaining(), 'begin transaction')
    try {
      await L.within(txn.send({ topic, compression, messages }), deadline.remaining(), 'send')
    } catch (e) {
      await txn.abort().catch(() => {})
      throw e
    }
    if (abort) {
      await L.within(txn.abort(), deadline.remaining(), 'abort')
      aborted += per
    } else {
      await L.within(txn.commit(), deadline.remaining(), 'commit')
      for (const m of messages) committed.add(m.value)
    }
    L.emit({ type: 'transaction', t, outcome: abort ? 'aborted' : 'committed' })
  }
  await producer.disconnect()

  L.CONTEXT.phase = 'read_committed'
  const consumer = kafka.consumer({ groupId: `strait-kafkajs-txn-read-${process.pid}-${Date.now()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 1000 })
  const seen = new Map()
  let consumed = 0
  let abortedSeen = 0
  let foreign = 0
  await L.within(consumer.connect(), deadline.remaining(), 'consumer connect')
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      consumed++
      const v = message.value == null ? '' : message.value.toString()
      if (v.startsWith('a-')) abortedSeen++
      else if (!committed.has(v)) foreign++
      else seen.set(v, (seen.get(v) || 0) + 1)
    },
  })
  let error
  await L.until(deadline, `${committed.size} records`, () => consumed >= committed.size, 50).catch(e => (error = String(e)))
  await consumer.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const duplicates = [...seen.values()].reduce((s, c) => s + c - 1, 0)
  const missing = committed.size - seen.size
  const ok = !error && missing === 0 && duplicates === 0 && abortedSeen === 0 && foreign === 0
  return L.summary(ok, {
    committed: committed.size,
    aborted,
    consumed,
    distinct: seen.size,
    duplicates,
    aborted_seen: abortedSeen,
    missing,
    foreign,
    elapsed_ms: deadline.elapsedMs(),
    ...(ok ? {} : { error: error || 'transaction checks failed' }),
  })
})
