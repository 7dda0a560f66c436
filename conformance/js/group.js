#!/usr/bin/env node
'use strict'
const DOC = `
group.js --bootstrap B --topic T --records N [--part-records K] [--timeout-ms MS]

A kafkajs consumer group of two members that rebalances, commits and resumes (the kafkajs
counterpart of the Java GroupRebalance driver). Creates T (4 partitions) through B; members 1
and 2 (one process, two consumers, group strait-kafkajs-group-<random>, no auto-commit) join
and the driver waits until they hold disjoint, non-empty assignments covering the 4 partitions;
then N records (key = value = index, record i to partition i % 4, acks=-1) are produced. Each
member processes K records (default N/10), committing each record's offset + 1 before the next,
and pauses. Member 2 disconnects (LeaveGroup); member 1 is rebalanced to own all 4 partitions,
reads the committed offsets (admin fetchOffsets), resumes, and consumes to the end.

Checks: every index consumed, none twice (every consumed record was committed before the next,
so nothing is read again), member 1 resumed each partition exactly at its committed offset, and
the group's committed offsets equal the end offsets at the end.

Output: {"type":"assignment","when":"before"|"after","member","partitions"},
{"type":"part","member","processed"}, {"type":"resume","partition","committed","first_offset"},
{"type":"committed_offsets","offsets"}; summary records, consumed, missing, duplicates,
resume_mismatches, offset_mismatches.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  topic: { required: true },
  records: { required: true, int: true },
  'part-records': { int: true },
  'timeout-ms': { default: '90000' },
  'log-level': {},
}
const PARTITIONS = 4

L.CONTEXT.driver = 'group.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  const n = args.records
  const part = args.partRecords === undefined ? Math.floor(n / 10) : args.partRecords
  if (n < PARTITIONS * 2 || part < 1 || part > n / 2 - 1) throw new L.Usage('--records >= 8 and 1 <= --part-records < N/2 - 1')
  const kafka = L.client(args)
  const topic = args.topic
  const groupId = `strait-kafkajs-group-${process.pid}-${Date.now()}`
  L.CONTEXT.group = groupId
  const admin = kafka.admin()
  await L.within(admin.connect(), deadline.remaining(), 'admin connect')
  L.CONTEXT.phase = 'create topic'
  await L.within(admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true }), deadline.remaining(), 'createTopics')

  const seen = new Map() // index -> times consumed
  let ignoredWhilePaused = 0
  const members = [1, 2].map(id => ({
    id,
    consumer: kafka.consumer({ groupId, allowAutoTopicCreation: false, heartbeatInterval: 1000, maxWaitTimeInMs: 1000 }),
    assignment: null,
    processed: 0,
    paused: false,
    resumed: false,
    first: new Map(), // partition -> first offset after the resume
  }))
  for (const m of members) {
    m.consumer.on(m.consumer.events.GROUP_JOIN, e => {
      m.assignment = ((e.payload.memberAssignment || {})[topic] || []).slice().sort()
      L.log(`member ${m.id} joined: ${JSON.stringify(m.assignment)} at ${deadline.elapsedMs()} ms`)
    })
  }
  const run = m =>
    m.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (m.paused) {
          ignoredWhilePaused++
          return
        }
        if (m.resumed && !m.first.has(partition)) m.first.set(partition, message.offset)
        const i = Number(message.value.toString())
        seen.set(i, (seen.get(i) || 0) + 1)
        await m.consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
        m.processed++
        if (!m.resumed && m.processed >= part) {
          m.paused = true
          m.consumer.pause([{ topic }])
        }
      },
    })

  L.CONTEXT.phase = 'join'
  for (const m of members) {
    await L.within(m.consumer.connect(), deadline.remaining(), 'consumer connect')
    await m.consumer.subscribe({ topic, fromBeginning: true })
    await run(m)
  }
  await L.until(deadline, 'two members with disjoint assignments covering every partition', () => {
    const [a, b] = members.map(m => m.assignment)
    if (!a || !b || !a.length || !b.length) return false
    const all = new Set([...a, ...b])
    return all.size === PARTITIONS && a.length + b.length === PARTITIONS
  })
  for (const m of members) L.emit({ type: 'assignment', when: 'before', member: m.id, partitions: m.assignment })

  L.CONTEXT.phase = 'produce'
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await L.within(producer.connect(), deadline.remaining(), 'producer connect')
  for (let start = 0; start < n; start += 500) {
    const messages = []
    for (let i = start; i < Math.min(n, start + 500); i++) messages.push({ key: String(i), value: String(i), partition: i % PARTITIONS })
    await L.within(producer.send({ topic, acks: -1, messages }), deadline.remaining(), 'send')
  }
  await producer.disconnect()

  L.log(`produced at ${deadline.elapsedMs()} ms`)
  L.CONTEXT.phase = 'part'
  await L.until(deadline, `each member to process ${part} records`, () => members.every(m => m.paused))
  for (const m of members) L.emit({ type: 'part', member: m.id, processed: m.processed })

  L.log(`parts done at ${deadline.elapsedMs()} ms`)
  L.CONTEXT.phase = 'member 2 leaves'
  const [one, two] = members
  one.assignment = null
  await L.within(two.consumer.disconnect(), deadline.remaining(), 'member 2 disconnect')
  await L.until(deadline, 'member 1 to own every partition', () => one.assignment && one.assignment.length === PARTITIONS)
  L.emit({ type: 'assignment', when: 'after', member: 1, partitions: one.assignment })

  const committedMap = async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return new Map(t.partitions.map(p => [p.partition, p.offset]))
  }
  const atResume = await committedMap()
  L.CONTEXT.phase = 'resume'
  one.resumed = true
  one.paused = false
  one.consumer.resume([{ topic }])
  await L.until(deadline, `all ${n} records`, () => seen.size >= n)

  L.log(`all consumed at ${deadline.elapsedMs()} ms`)
  L.CONTEXT.phase = 'final commit'
  const offsets = await admin.fetchTopicOffsets(topic)
  const ends = new Map(offsets.map(p => [p.partition, p.high]))
  const lows = new Map(offsets.map(p => [p.partition, p.low]))
  let committed
  await L.until(deadline, 'committed offsets at the end offsets', async () => {
    committed = await committedMap()
    return [...ends].every(([p, end]) => committed.get(p) === end)
  }, 100).catch(e => L.log(String(e)))
  L.emit({ type: 'committed_offsets', offsets: Object.fromEntries(committed), end_offsets: Object.fromEntries(ends) })

  let resumeMismatches = 0
  for (let p = 0; p < PARTITIONS; p++) {
    const c = atResume.get(p)
    const first = one.first.has(p) ? one.first.get(p) : null
    // A partition whose committed offset is already its end has nothing left to resume.
    const from = c === '-1' ? lows.get(p) : c // nothing committed: auto.offset.reset earliest
    const ok = first === null ? from === ends.get(p) : first === from
    if (!ok) resumeMismatches++
    L.emit({ type: 'resume', partition: p, committed: c, first_offset: first, ok })
  }
  await Promise.all([one.consumer.disconnect(), admin.disconnect()])
  delete L.CONTEXT.phase
  let missing = 0
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing++
  const duplicates = [...seen.values()].reduce((s, c) => s + c - 1, 0)
  const offsetMismatches = [...ends].filter(([p, end]) => committed.get(p) !== end).length
  const consumed = [...seen.values()].reduce((s, c) => s + c, 0)
  const ok = missing === 0 && duplicates === 0 && resumeMismatches === 0 && offsetMismatches === 0 && seen.size === n
  return L.summary(ok, {
    records: n,
    part_records: part,
    consumed,
    distinct: seen.size,
    missing,
    duplicates,
    resume_mismatches: resumeMismatches,
    offset_mismatches: offsetMismatches,
    ignored_while_paused: ignoredWhilePaused,
    elapsed_ms: deadline.elapsedMs(),
    ...(ok ? {} : { error: 'group checks failed' }),
  })
})
