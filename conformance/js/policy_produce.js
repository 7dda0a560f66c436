#!/usr/bin/env node
'use strict'
const DOC = `
policy_produce.js --bootstrap B --topic T --records N [--header k=v ...] [--value-bytes S]
    [--acks all|1|0] [--idempotent] [--compression none|gzip|snappy|lz4|zstd] [--null-key]
    [--partition P] [--expect-failure] [--timeout-ms MS]

The kafkajs counterpart of PolicyProduce (conformance/README.md): N records to T (must exist)
in one send: key = index (--null-key: none), value = S bytes (default 100) repeating
"value-<index>;", the headers on every record (order and duplicates kept; --header k = an empty
value: kafkajs has no null header values), acks all (-1) unless --acks, kafkajs defaults otherwise
(idempotent off unless --idempotent, no compression unless --compression), partition P when
given. kafkajs sends the records of one partition as one batch, so they succeed or fail
together.

Output: {"type":"error","index","exception","error_type","code","message","retriable","cause",
"count","last_index"} (a run of identical consecutive errors = one line); summary acked, failed,
first_index, first_exception, first_error_type, first_code, first_message (messages of the
error and its causes joined by " | "), acked_offsets {partition:[min,max]}.
ok: all acknowledged; --expect-failure: none acknowledged, >= 1 failed.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  topic: { required: true },
  records: { required: true, int: true },
  header: { multiple: true, default: [] },
  'value-bytes': { int: true, default: '100' },
  acks: { default: 'all' },
  idempotent: { type: 'boolean' },
  compression: { default: 'none' },
  'null-key': { type: 'boolean' },
  partition: { int: true },
  'expect-failure': { type: 'boolean' },
  'timeout-ms': { default: '30000' },
  'log-level': {},
}

L.CONTEXT.driver = 'policy_produce.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  const n = args.records
  const acks = { all: -1, '-1': -1, 1: 1, 0: 0 }[args.acks]
  if (n < 1 || args.valueBytes < 0 || acks === undefined) throw new L.Usage('--records >= 1, --value-bytes >= 0, --acks all|1|0')
  const headers = {}
  for (const [k, v] of L.pairs(args.header, '--header')) {
    const value = v === null ? '' : v
    headers[k] = k in headers ? [].concat(headers[k], value) : value
  }
  const compression = L.compressionType(args.compression)
  const kafka = L.client(args)
  const producer = kafka.producer({
    idempotent: !!args.idempotent,
    maxInFlightRequests: args.idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
    // A rejection is final: do not retry a retriable one past the run's timeout.
    retry: args.idempotent ? undefined : { retries: 5, maxRetryTime: 2000 },
  })
  L.CONTEXT.phase = 'connect'
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  const messages = []
  for (let i = 0; i < n; i++) {
    const m = { key: args.nullKey ? null : String(i), value: `value-${i};`.repeat(args.valueBytes).slice(0, args.valueBytes), headers }
    if (args.partition !== undefined) m.partition = args.partition
    messages.push(m)
  }
  L.CONTEXT.phase = 'produce'
  let acked = 0
  let failed = 0
  let first = null
  const ackedOffsets = {}
  try {
    const result = await L.within(producer.send({ topic: args.topic, acks, compression, messages }), deadline.remaining(), 'send')
    acked = n
    for (const r of result) ackedOffsets[r.partition] = [Number(r.baseOffset), Number(r.baseOffset) + n - 1]
  } catch (e) {
    failed = n
    const info = L.errorInfo(e)
    first = { index: 0, info, text: L.errorText(e) }
    L.emit(Object.assign({ type: 'error', index: 0 }, info, { count: n, last_index: n - 1 }))
  }
  await producer.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const fields = { acked, failed, acked_offsets: ackedOffsets, elapsed_ms: deadline.elapsedMs() }
  if (first) {
    Object.assign(fields, {
      first_index: first.index,
      first_exception: first.info.exception,
      first_error_type: first.info.error_type === undefined ? null : first.info.error_type,
      first_code: first.info.code === undefined ? null : first.info.code,
      first_message: first.text,
    })
  }
  const ok = args.expectFailure ? acked === 0 && failed >= 1 : acked === n
  if (!ok) fields.error = args.expectFailure ? 'expected every record to fail' : `${acked} of ${n} acknowledged`
  return L.summary(ok, fields)
})
