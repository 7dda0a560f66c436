#!/usr/bin/env node
'use strict'
const DOC = `
admin.js --bootstrap B --action create|alter|delete --topic T [--partitions P]
    [--replication-factor R] [--config k=v ...] [--expect-failure] [--timeout-ms MS]

kafkajs's admin client for the admin guardrails: create (CreateTopics; P / R unset = broker
defaults, -1; configs = --config), alter (kafkajs's alterConfigs: the legacy AlterConfigs
request, API 33, for the TOPIC resource with exactly the --config set), delete (DeleteTopics).
kafkajs turns an error code into an error of that code's type and default text (it does not
read the responses' error messages).

Output: {"type":"result","action","topic","ok","exception","error_type","code","message"};
summary succeeded, failed, first_exception, first_error_type, first_code, first_message.
ok: the action succeeded; --expect-failure: it failed.
`
const L = require('./lib')

const OPTIONS = {
  bootstrap: { required: true },
  action: { required: true },
  topic: { required: true },
  partitions: { int: true, default: '-1' },
  'replication-factor': { int: true, default: '-1' },
  config: { multiple: true, default: [] },
  'expect-failure': { type: 'boolean' },
  'timeout-ms': { default: '30000' },
  'log-level': {},
}

L.CONTEXT.driver = 'admin.js'
L.main(DOC, OPTIONS, async (args, deadline) => {
  if (!['create', 'alter', 'delete'].includes(args.action)) throw new L.Usage('--action must be create, alter or delete')
  const configs = L.pairs(args.config, '--config').map(([name, value]) => ({ name, value: value === null ? '' : value }))
  const kafka = L.client(args, { retry: { retries: 2, maxRetryTime: 2000 } })
  const admin = kafka.admin()
  L.CONTEXT.phase = 'connect'
  await L.within(admin.connect(), deadline.remaining(), 'admin connect')
  L.CONTEXT.phase = args.action
  let error = null
  try {
    const { ConfigResourceTypes } = L.kafkajs()
    const call = {
      create: () =>
        admin.createTopics({
          topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: args.replicationFactor, configEntries: configs }],
        }),
      alter: () => admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic, configEntries: configs }] }),
      delete: () => admin.deleteTopics({ topics: [args.topic], timeout: Math.min(10000, deadline.remaining()) }),
    }[args.action]
    await L.within(call(), deadline.remaining(), args.action)
  } catch (e) {
    // createTopics / deleteTopics wrap per-topic errors.
    error = e && Array.isArray(e.errors) && e.errors.length ? e.errors[0] : e && e.type === undefined && e.cause ? e.cause : e
    if (error && error.type === undefined && error.originalError) error = error.originalError
  }
  await admin.disconnect().catch(e => L.log(`disconnect: ${e}`))
  delete L.CONTEXT.phase
  const info = error ? L.errorInfo(error) : null
  L.emit({
    type: 'result',
    action: args.action,
    topic: args.topic,
    ok: !error,
    exception: info ? info.exception : null,
    error_type: info && info.error_type !== undefined ? info.error_type : null,
    code: info && info.code !== undefined ? info.code : null,
    message: info ? info.message : null,
  })
  const fields = { succeeded: error ? 0 : 1, failed: error ? 1 : 0, elapsed_ms: deadline.elapsedMs() }
  if (info) Object.assign(fields, { first_exception: info.exception, first_error_type: info.error_type === undefined ? null : info.error_type, first_code: info.code === undefined ? null : info.code, first_message: L.errorText(error) })
  const ok = args.expectFailure ? !!error : !error
  if (!ok) fields.error = args.expectFailure ? 'expected the action to fail' : `${args.action} failed`
  return L.summary(ok, fields)
})
