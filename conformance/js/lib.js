'use strict'
// Shared plumbing of the kafkajs conformance drivers (conformance/README.md):
// one JSON object per line on stdout and a summary line printed exactly once,
// exit codes (0 ok, 1 failed, 2 usage, 3 watchdog), a deadline and a watchdog
// that bound every run, kafkajs's log on stderr, the codecs that let kafkajs
// read (and write) snappy, lz4 and zstd batches, and command-line parsing
// that reports usage errors as a summary line too.

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const crypto = require('crypto')
const fs = require('fs')
const util = require('util')

const EXIT_OK = 0
const EXIT_FAIL = 1
const EXIT_USAGE = 2
const EXIT_WATCHDOG = 3
const WATCHDOG_GRACE_MS = 15000

// Fields repeated in the summary line; each driver sets `driver` and adds its own.
const CONTEXT = {}
let summaryPrinted = false

function log(msg) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`)
}

function emit(obj) {
  if (!summaryPrinted) process.stdout.write(JSON.stringify(obj) + '\n')
}

/**
 * Exits with `code` once everything written to stdout is flushed (a write
 * to a pipe the reader has not drained yet is still queued in the process).
 */
function exit(code) {
  process.stdout.write('', () => process.exit(code))
}

/** Prints the summary line (once) and returns the exit code. */
function summary(ok, fields = {}) {
  const line = Object.assign({ type: 'summary', ok }, CONTEXT, fields, { type: 'summary', ok })
  if (!summaryPrinted) {
    summaryPrinted = true
    process.stdout.write(JSON.stringify(line) + '\n')
  }
  return ok ? EXIT_OK : EXIT_FAIL
}

class Deadline {
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs
    this.start = Date.now()
    this.end = this.start + timeoutMs
  }
  remaining() {
    return Math.max(0, this.end - Date.now())
  }
  expired() {
    return Date.now() >= this.end
  }
  elapsedMs() {
    return Date.now() - this.start
  }
}

/** Ends the process (exit 3, failing summary) at timeout + 15 s whatever blocks. */
function startWatchdog(deadline) {
  const t = setTimeout(() => {
    log(`watchdog fired (timeout ${deadline.timeoutMs} ms + grace ${WATCHDOG_GRACE_MS} ms); exiting`)
    summary(false, {
      error: 'watchdog: driver did not finish within timeout-ms + grace',
      timeout_ms: deadline.timeoutMs,
    })
    process.exit(EXIT_WATCHDOG)
  }, deadline.timeoutMs + WATCHDOG_GRACE_MS)
  t.unref()
}

class Usage extends Error {}

/**
 * Parses argv with util.parseArgs. `options` maps a long option name to
 * { type: 'string'|'boolean', multiple, default, int: true }. `--help`
 * prints `doc`; a usage error prints a failing summary and exits 2.
 */
function parse(argv, options, doc) {
  const spec = { help: { type: 'boolean' }, 'timeout-ms': { type: 'string' } }
  for (const [k, o] of Object.entries(options)) {
    spec[k] = { type: o.type || 'string', multiple: !!o.multiple }
  }
  let values
  try {
    ;({ values } = util.parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }))
  } catch (e) {
    usageExit(e.message, doc)
  }
  if (values.help) {
    process.stdout.write(doc.trim() + '\n')
    process.exit(EXIT_OK)
  }
  const out = {}
  for (const [k, o] of Object.entries(options)) {
    if (k === 'timeout-ms') continue
    let v = values[k]
    if (v === undefined) v = o.default
    if (v === undefined && o.required) usageExit(`--${k} is required`, doc)
    if (o.int && v !== undefined) {
      const parse1 = s => {
        if (!/^-?\d+$/.test(String(s))) usageExit(`--${k} expects an integer, got ${JSON.stringify(s)}`, doc)
        return Number(s)
      }
      v = Array.isArray(v) ? v.map(parse1) : parse1(v)
    }
    out[camel(k)] = v
  }
  const fallback = options['timeout-ms'] ? options['timeout-ms'].default : '60000'
  const timeout = values['timeout-ms'] === undefined ? String(fallback) : values['timeout-ms']
  if (!/^\d+$/.test(timeout) || Number(timeout) <= 0) usageExit('--timeout-ms must be a positive integer', doc)
  out.timeoutMs = Number(timeout)
  return out
}

function usageExit(message, doc) {
  process.stderr.write(`${(doc || '').trim().split('\n')[0]}\nerror: ${message}\n`)
  summary(false, { error: 'usage: ' + message })
  process.exit(EXIT_USAGE)
}

function camel(s) {
  return s.replace(/-([a-z])/g, (_, c) => c.toUpperCase())
}

/** `k=v` items as [k, v] pairs (order and duplicates kept; `k` alone: null value). */
function pairs(items, option) {
  return (items || []).map(kv => {
    if (kv.startsWith('=')) usageExit(`${option} expects key=value, got ${JSON.stringify(kv)}`)
    const at = kv.indexOf('=')
    return at < 0 ? [kv, null] : [kv.slice(0, at), kv.slice(at + 1)]
  })
}

// ------------------------------------------------------------------ kafkajs

let kafkajs = null
let codecsReady = null

/**
 * kafkajs with the snappy (kafkajs-snappy: snappyjs, pure JavaScript), lz4
 * (@2l/kafkajs-lz4: lz4-napi, whose binary is an npm package of its own) and
 * zstd (zstd-codec: zstd compiled to WebAssembly) codecs registered in
 * CompressionCodecs; gzip is built in.
 */
async function loadKafkajs() {
  if (codecsReady) return codecsReady
  codecsReady = (async () => {
    kafkajs = require('kafkajs')
    const { CompressionTypes, CompressionCodecs } = kafkajs
    CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
    const LZ4Codec = require('@2l/kafkajs-lz4')
    CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
    const zstd = await new Promise(resolve => require('zstd-codec').ZstdCodec.run(resolve))
    const streaming = new zstd.Streaming()
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      async compress(encoder) {
        const out = streaming.compress(encoder.buffer, 3)
        if (out === null) throw new Error('zstd compression failed')
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
      },
      // Streaming decompression: frames without a content size decode too.
      async decompress(buffer) {
        const out = streaming.decompress(buffer)
        if (out === null) throw new Error('zstd decompression failed (corrupt frame?)')
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
      },
    })
    const version = JSON.parse(fs.readFileSync(require.resolve('kafkajs/package.json'), 'utf8')).version
    CONTEXT.client = `kafkajs ${version}`
    return kafkajs
  })()
  return codecsReady
}

function compressionType(name) {
  const { CompressionTypes } = kafkajs
  const types = {
    none: CompressionTypes.None,
    gzip: CompressionTypes.GZIP,
    snappy: CompressionTypes.Snappy,
    lz4: CompressionTypes.LZ4,
    zstd: CompressionTypes.ZSTD,
  }
  if (!(name in types)) usageExit(`--compression must be one of ${Object.keys(types).join(', ')}`)
  return types[name]
}

const LEVELS = { nothing: 0, error: 1, warn: 2, info: 4, debug: 5 }

/**
 * A Kafka client for `args.bootstrap` logging to stderr; TLS from
 * --ca-pem/--cert-pem/--key-pem when given (hostname verification on).
 */
function client(args, extra = {}) {
  const { Kafka } = kafkajs
  const level = LEVELS[args.logLevel || 'warn']
  const config = {
    clientId: args.clientId || CONTEXT.driver || 'strait-kafkajs',
    brokers: args.bootstrap.split(',').map(s => s.trim()).filter(Boolean),
    logLevel: level === undefined ? LEVELS.warn : level,
    logCreator: () => ({ namespace, level, label, log: entry }) => {
      const { message, timestamp, logger, ...rest } = entry
      process.stderr.write(`${timestamp} ${label} [${namespace}] ${message} ${JSON.stringify(rest)}\n`)
    },
  }
  if (args.caPem) {
    config.ssl = { ca: [fs.readFileSync(args.caPem, 'utf8')], rejectUnauthorized: true }
    if (args.certPem) config.ssl.cert = fs.readFileSync(args.certPem, 'utf8')
    if (args.keyPem) config.ssl.key = fs.readFileSync(args.keyPem, 'utf8')
  }
  return new Kafka(Object.assign(config, extra))
}

/** What a client error says: its class, kafkajs type and code, text, retriable, causes. */
function errorInfo(e) {
  const info = {
    exception: (e && e.name) || typeof e,
    message: e && e.message !== undefined ? String(e.message) : String(e),
  }
  if (e && e.type !== undefined) info.error_type = e.type
  if (e && e.code !== undefined) info.code = e.code
  if (e && e.retriable !== undefined) info.retriable = !!e.retriable
  const causes = []
  let c = e && (e.cause || e.originalError)
  const seen = new Set()
  while (c && !seen.has(c) && causes.length < 8) {
    seen.add(c)
    const one = { exception: c.name || typeof c, message: c.message !== undefined ? String(c.message) : String(c) }
    if (c.type !== undefined) one.error_type = c.type
    if (c.code !== undefined) one.code = c.code
    causes.push(one)
    c = c.cause || c.originalError
  }
  if (e && Array.isArray(e.errors)) {
    for (const inner of e.errors.slice(0, 4)) causes.push(errorInfo(inner))
  }
  info.cause = causes.length ? causes : null
  return info
}

/** The exception names and messages of an error and its causes joined by " | ". */
function errorText(e) {
  const info = errorInfo(e)
  const parts = [`${info.exception}: ${info.message}`]
  const walk = list => {
    for (const c of list || []) {
      parts.push(`${c.exception}: ${c.message}`)
      walk(c.cause)
    }
  }
  walk(info.cause)
  return parts.join(' | ')
}

/** Resolves `p`, or rejects with a timeout error after `ms` (the timer is cleared). */
function within(p, ms, what) {
  let t
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), Math.max(1, ms))
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(t))
}

/** Polls `check` (bounded by `deadline`) until it returns true; `what` names the wait. */
async function until(deadline, what, check, pauseMs = 20) {
  for (;;) {
    if (await check()) return
    if (deadline.expired()) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, Math.min(pauseMs, deadline.remaining() + 1)))
  }
}

/** Runs the driver's main(args, deadline), prints a summary for a crash, exits with its code. */
function main(doc, options, body) {
  const args = parse(process.argv.slice(2), options, doc)
  const deadline = new Deadline(args.timeoutMs)
  startWatchdog(deadline)
  CONTEXT.bootstrap = args.bootstrap
  if (args.topic !== undefined) CONTEXT.topic = args.topic
  process.on('unhandledRejection', e => {
    log(`unhandled rejection: ${(e && e.stack) || e}`)
  })
  loadKafkajs()
    .then(() => body(args, deadline))
    .then(
      code => exit(code),
      e => {
        if (e instanceof Usage) usageExit(e.message, doc)
        log((e && e.stack) || String(e))
        const fields = { error: errorText(e), elapsed_ms: deadline.elapsedMs() }
        exit(summary(false, fields))
      }
    )
}

// ------------------------------------------------------------------ content

/** SHA-256 of `buf`, hex. */
function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex')
}

/**
 * The shared large-record value (conformance/python/large_records.py):
 * the first `size` bytes of SHA-256(S||I||B0) || SHA-256(S||I||B1) || ...,
 * each of seed, index and block counter as 8 bytes big-endian.
 */
function largeValue(seed, index, size) {
  const out = Buffer.allocUnsafe(Math.ceil(size / 32) * 32)
  const msg = Buffer.alloc(24)
  msg.writeBigInt64BE(BigInt(seed), 0)
  msg.writeBigInt64BE(BigInt(index), 8)
  // crypto.hash (one-shot, Node >= 20.12) is much faster than a Hash object per block.
  const digest = crypto.hash
    ? m => crypto.hash('sha256', m, 'buffer')
    : m => crypto.createHash('sha256').update(m).digest()
  for (let b = 0; b * 32 < size; b++) {
    msg.writeUInt32BE(Math.floor(b / 0x100000000), 16)
    msg.writeUInt32BE(b >>> 0, 20)
    digest(msg).copy(out, b * 32)
  }
  return out.subarray(0, size)
}

module.exports = {
  EXIT_OK,
  EXIT_FAIL,
  EXIT_USAGE,
  CONTEXT,
  exit,
  Usage,
  Deadline,
  log,
  emit,
  summary,
  parse,
  pairs,
  loadKafkajs,
  compressionType,
  client,
  errorInfo,
  errorText,
  within,
  until,
  main,
  sha256,
  largeValue,
  kafkajs: () => kafkajs,
}
