#!/usr/bin/env node
'use strict'
const DOC = `
read.js --bootstrap B --topic T [--expect N] [--read-uncommitted] [--max-bytes-per-partition N] [--quiet] [--timeout-ms MS]

Reads T from the beginning with a kafkajs consumer in a fresh group (no commits), isolation
read_committed (kafkajs's default; --read-uncommitted for read_uncommitted). Without --expect
it stops once every partition reached the end offset (high watermark) taken at the start; with
--expect N it stops after N records (for read_committed reads of transactional topics, where
the last offsets are control records a consumer never sees).

Output: {"type":"record","partition","offset","key","value","headers":[[k,v],...]} per record
(UTF-8 text; null for null) unless --quiet; summary count, per_partition, end_offsets.
ok: the end (or N records) reached within the timeout.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  topic: { required: true },
  expect: { int: true },
  'read-uncommitted': { type: 'boolean' },
  'max-bytes-per-partition': { int: true },
  quiet: { type: 'boolean' },
  'log-level': {},
}

L.CONTEXT.driver = 'read.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  const kafka = L.client(args)
  const topic = args.topic
  const admin = kafka.admin()
  await L.within(admin.connect(), deadline.remaining(), 'admin connect')
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map(p => [p.partition, BigInt(p.high)]))
  await admin.disconnect()
  const consumer = kafka.consumer({
    groupId: `strait-kafkajs-read-${process.pid}-${Date.now()}`,
    readUncommitted: !!args.readUncommitted,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 1000,
    ...(args.maxBytesPerPartition !== undefined && { maxBytesPerPartition: args.maxBytesPerPartition }),
  })
  const next = new Map([...ends.keys()].map(p => [p, 0n]))
  const perPartition = {}
  let count = 0
  await L.within(consumer.connect(), deadline.remaining(), 'consumer connect')
  await consumer.subscribe({ topic, fromBeginning: true })
  L.CONTEXT.phase = 'consume'
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (args.expect !== undefined && count >= args.expect) return
      count++
      perPartition[partition] = (perPartition[partition] || 0) + 1
      next.set(partition, BigInt(message.offset) + 1n)
      if (!args.quiet) {
        const headers = []
        for (const [k, v] of Object.entries(message.headers || {})) {
          for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one == null ? null : one.toString()])
        }
        L.emit({
          type: 'record',
          partition,
          offset: Number(message.offset),
          key: message.key == null ? null : message.key.toString(),
          value: message.value == null ? null : message.value.toString(),
          headers,
        })
      }
    },
  })
  const done = () =>
    args.expect !== undefined ? count >= args.expect : [...ends].every(([p, end]) => next.get(p) >= end)
  let error
  await L.until(deadline, args.expect !== undefined ? `${args.expect} records` : 'the end offsets', done, 50).catch(e => (error = String(e)))
  await consumer.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const fields = {
    count,
    per_partition: perPartition,
    end_offsets: Object.fromEntries([...ends].map(([p, e]) => [p, Number(e)])),
    elapsed_ms: deadline.elapsedMs(),
  }
  if (error) fields.error = error
  return L.summary(!error, fields)
})
