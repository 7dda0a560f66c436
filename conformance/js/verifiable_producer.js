#!/usr/bin/env node
'use strict'
const DOC = `
verifiable_producer.js --bootstrap B --topic T --max-messages N [--partition P] [--throughput R]
    [--no-idempotence] [--timeout-ms MS]

kafkajs counterpart of Kafka's VerifiableProducer: N records, value (and key) = the index as
text, acks=-1, idempotent (kafkajs: idempotent: true, maxInFlightRequests: 1 and unlimited
retries, so a retriable error is retried until --timeout-ms), in sends of 100 records one
after another to partition P (default 0), at most R records per second (default 10000; pacing, not synchronisation).

Unlimited retries are set explicitly. kafkajs documents them as the idempotent producer's
default, but Kafka#producer() always hands createProducer a retry object (src/index.js:
"retry: { ...this[PRIVATE.CLUSTER_RETRY], ...retry }"), so the default
"retry || { retries: Number.MAX_SAFE_INTEGER }" (src/producer/index.js) never applies and the
client's 5 retries do. A send given up after a request whose response was lost is unsafe in
kafkajs: src/producer/sendMessages.js rolls the partition's sequence back on a failed request,
so the next send of the same size reuses the sequence numbers of a batch the broker may have
written, the broker answers it as a duplicate, and its records are acknowledged without being
written. A leader killed after appending a batch and before answering loses that response,
with or without a proxy in between.

Output, as VerifiableProducer prints them: {"name":"producer_send_success","value","key",
"partition","offset"} per acknowledged record, {"name":"producer_send_error","value","key",
"exception","message"} per record of a failed send; then the summary
{"type":"summary","ok","acked","failed","unsent"}. ok: every send ended (acknowledged or failed)
within the timeout. Without idempotence kafkajs gives a send up after its 5 retries
(KafkaJSNumberOfRetriesExceeded); as with VerifiableProducer, such records are reported, not owed.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  partition: { int: true, default: '0' },
  topic: { required: true },
  'max-messages': { required: true, int: true },
  throughput: { int: true, default: '10000' },
  'no-idempotence': { type: 'boolean' },
  'timeout-ms': { default: '240000' },
  'log-level': {},
}
const CHUNK = 100

L.CONTEXT.driver = 'verifiable_producer.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  const n = args.maxMessages
  if (n < 0 || args.throughput < 1) throw new L.Usage('--max-messages >= 0, --throughput >= 1')
  const kafka = L.client(args)
  const idempotent = !args.noIdempotence
  const producer = kafka.producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    retry: idempotent ? { retries: Number.MAX_SAFE_INTEGER } : undefined,
    allowAutoTopicCreation: false,
  })
  L.CONTEXT.idempotent = idempotent
  L.CONTEXT.phase = 'connect'
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  let acked = 0
  let failed = 0
  let sent = 0
  L.CONTEXT.phase = 'produce'
  const started = Date.now()
  while (sent < n && !deadline.expired()) {
    const due = started + (sent * 1000) / args.throughput
    if (due > Date.now()) await new Promise(r => setTimeout(r, due - Date.now()))
    const messages = []
    for (let i = sent; i < Math.min(n, sent + CHUNK); i++) messages.push({ key: String(i), value: String(i), partition: args.partition })
    sent += messages.length
    try {
      const result = await L.within(producer.send({ topic: args.topic, acks: -1, messages }), deadline.remaining(), 'send')
      const r = result.find(x => x.partition === args.partition)
      if (!r || result.length !== 1) throw new Error(`unexpected acknowledgement ${JSON.stringify(result)}`)
      messages.forEach((m, k) => {
        acked++
        L.emit({ name: 'producer_send_success', key: m.key, value: m.value, partition: r.partition, offset: Number(BigInt(r.baseOffset) + BigInt(k)) })
      })
    } catch (e) {
      const info = L.errorInfo(e)
      L.log(`send of records ${sent - messages.length}..${sent - 1} failed: ${L.errorText(e)}`)
      for (const m of messages) {
        failed++
        L.emit({ name: 'producer_send_error', key: m.key, value: m.value, exception: info.exception, message: info.message })
      }
    }
  }
  L.CONTEXT.phase = 'disconnect'
  await L.within(producer.disconnect(), Math.max(1000, deadline.remaining()), 'producer disconnect').catch(e => L.log(String(e)))
  delete L.CONTEXT.phase
  // As VerifiableProducer: a failed send is reported, not fatal (its records are not owed).
  const ok = acked + failed === n
  return L.summary(ok, { acked, failed, unsent: n - sent, elapsed_ms: deadline.elapsedMs(), ...(ok ? {} : { error: `${n - sent} record(s) unsent within the timeout` }) })
})
