// Command strait-franz is the franz-go conformance driver of Strait's test
// suite: one program, one subcommand per scenario (see usage below and
// conformance/README.md). It follows the driver contract: all parameters on
// the command line, one JSON object per line on stdout whose last line is the
// summary, logs on stderr, exit 0 ok / 1 failed / 2 usage / 3 watchdog, and
// every wait bounded by --timeout-ms (a watchdog ends the process at
// timeout + 15 s if a client call ever blocks past it).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	exitOK        = 0
	exitFail      = 1
	exitUsage     = 2
	exitWatchdog  = 3
	watchdogGrace = 15 * time.Second
)

const usage = `usage: strait-franz COMMAND [options]   (COMMAND --help for its options)

commands:
  produce-consume   N records (key, binary value, headers in order) produced, then consumed
                    by a fresh group and compared byte for byte; --expect-failure for TLS refusals
  group             two members join, rebalance on leave, commit, the survivor resumes
  verifiable-produce  VerifiableProducer-style JSON lines (idempotent, acks=all)
  read              reads a topic from the beginning (assign, no group), one line per record
  transactions      committed and aborted transactions, read back read_committed
  policy-produce    N records with chosen headers / sizes / acks / compression, error codes reported
  admin             create / incremental-alter / alter / delete topics (kmsg), errors and messages reported
  large-records     produce | consume: the shared large-value spec (LargeRecords.java)
  create-topic      CreateTopics, then waits until every broker lists a leader per partition
  batches           the record batches of a partition as stored (raw Fetch from its leader)
`

// Every command's flags: bootstrap, timeout, TLS, SASL.
type common struct {
	// command: the driver command, in the client id (strait-franz-<command>)
	// so a proxy's or broker's logs tell the driver's clients apart.
	command       string
	bootstrap     string
	timeoutMs     int
	caPem         string
	certPem       string
	keyPem        string
	saslMechanism string
	saslUser      string
	saslPassword  string
}

func (c *common) register(fs *flag.FlagSet, defaultTimeoutMs int) {
	fs.StringVar(&c.bootstrap, "bootstrap", "", "bootstrap servers host:port[,host:port] (required)")
	fs.IntVar(&c.timeoutMs, "timeout-ms", defaultTimeoutMs, "bound on the whole run")
	fs.StringVar(&c.caPem, "ca-pem", "", "TLS: trust this CA (PEM); turns TLS on")
	fs.StringVar(&c.certPem, "cert-pem", "", "TLS: client certificate (PEM)")
	fs.StringVar(&c.keyPem, "key-pem", "", "TLS: client key (PEM)")
	fs.StringVar(&c.saslMechanism, "sasl-mechanism", "", "SASL: PLAIN or SCRAM-SHA-512 (franz-go's pkg/sasl); turns SASL on")
	fs.StringVar(&c.saslUser, "sasl-username", "", "SASL: user name")
	fs.StringVar(&c.saslPassword, "sasl-password", "", "SASL: password")
}

// saslOpt: franz-go's own SASL mechanism for the --sasl-* flags (none
// without --sasl-mechanism). franz-go re-authenticates a connection before
// the session lifetime the broker grants runs out (KIP-368).
func (c *common) saslOpt() ([]kgo.Opt, error) {
	if c.saslMechanism == "" {
		if c.saslUser != "" || c.saslPassword != "" {
			return nil, usageErr("--sasl-username / --sasl-password need --sasl-mechanism")
		}
		return nil, nil
	}
	if c.saslUser == "" {
		return nil, usageErr("--sasl-mechanism needs --sasl-username")
	}
	switch strings.ToUpper(c.saslMechanism) {
	case "PLAIN":
		return []kgo.Opt{kgo.SASL(plain.Auth{User: c.saslUser, Pass: c.saslPassword}.AsMechanism())}, nil
	case "SCRAM-SHA-512":
		return []kgo.Opt{kgo.SASL(scram.Auth{User: c.saslUser, Pass: c.saslPassword}.AsSha512Mechanism())}, nil
	}
	return nil, usageErr("--sasl-mechanism %q: PLAIN or SCRAM-SHA-512", c.saslMechanism)
}

// opts are the client options every command shares: seeds, logger, TLS.
func (c *common) opts() ([]kgo.Opt, error) {
	o := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.bootstrap, ",")...),
		kgo.ClientID("strait-franz-" + c.command),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, logLevel(), nil)),
	}
	sasl, err := c.saslOpt()
	if err != nil {
		return nil, err
	}
	o = append(o, sasl...)
	if c.caPem == "" {
		if c.certPem != "" || c.keyPem != "" {
			return nil, usageErr("--cert-pem / --key-pem need --ca-pem")
		}
		return o, nil
	}
	ca, err := os.ReadFile(c.caPem)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no PEM certificate", c.caPem)
	}
	// ServerName is left empty: franz-go sets it to the host it dials, so
	// the server certificate is verified against the bootstrap host.
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if (c.certPem == "") != (c.keyPem == "") {
		return nil, usageErr("--cert-pem and --key-pem go together")
	}
	if c.certPem != "" {
		pair, err := tls.LoadX509KeyPair(c.certPem, c.keyPem)
		if err != nil {
			return nil, err
		}
		// Always present the certificate, even when the server's list of
		// acceptable CAs does not name its issuer (crypto/tls would send
		// none then), so a certificate from another CA reaches the server.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pair, nil
		}
	}
	return append(o, kgo.DialTLSConfig(cfg)), nil
}

// logLevel: franz-go's log level, WARN unless $STRAIT_FRANZ_LOG says
// debug or info.
func logLevel() kgo.LogLevel {
	switch os.Getenv("STRAIT_FRANZ_LOG") {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// ---------------------------------------------------------------- output

var (
	outMu       sync.Mutex
	summaryDone bool
	context_    = map[string]any{}
)

type obj = map[string]any

func emit(o obj) {
	outMu.Lock()
	defer outMu.Unlock()
	if summaryDone {
		return
	}
	b, _ := json.Marshal(o)
	os.Stdout.Write(append(b, '\n'))
}

// summary prints the summary line once (context fields, then fields) and
// returns the exit code.
func summary(ok bool, fields obj) int {
	line := obj{}
	outMu.Lock()
	for k, v := range context_ {
		line[k] = v
	}
	outMu.Unlock()
	for k, v := range fields {
		line[k] = v
	}
	line["type"], line["ok"] = "summary", ok
	outMu.Lock()
	defer outMu.Unlock()
	if !summaryDone {
		summaryDone = true
		b, _ := json.Marshal(line)
		os.Stdout.Write(append(b, '\n'))
	}
	if ok {
		return exitOK
	}
	return exitFail
}

// setContext sets a field every summary line carries (nil removes it).
func setContext(k string, v any) {
	outMu.Lock()
	if v == nil {
		delete(context_, k)
	} else {
		context_[k] = v
	}
	outMu.Unlock()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------- deadline

type deadline struct {
	start, end time.Time
	timeoutMs  int
}

func newDeadline(ms int) *deadline {
	now := time.Now()
	return &deadline{start: now, end: now.Add(time.Duration(ms) * time.Millisecond), timeoutMs: ms}
}

func (d *deadline) remaining() time.Duration {
	r := time.Until(d.end)
	if r < 0 {
		return 0
	}
	return r
}
func (d *deadline) expired() bool    { return !time.Now().Before(d.end) }
func (d *deadline) elapsedMs() int64 { return time.Since(d.start).Milliseconds() }

// ctx is bounded by the deadline.
func (d *deadline) ctx() (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), d.end)
}

// capped is a context bounded by the deadline and by max.
func (d *deadline) capped(max time.Duration) (context.Context, context.CancelFunc) {
	end := time.Now().Add(max)
	if d.end.Before(end) {
		end = d.end
	}
	return context.WithDeadline(context.Background(), end)
}

func startWatchdog(d *deadline) {
	time.AfterFunc(time.Duration(d.timeoutMs)*time.Millisecond+watchdogGrace, func() {
		logf("watchdog fired (timeout %d ms + grace %s); exiting", d.timeoutMs, watchdogGrace)
		summary(false, obj{"error": "watchdog: driver did not finish within timeout-ms + grace", "timeout_ms": d.timeoutMs})
		os.Exit(exitWatchdog)
	})
}

// ---------------------------------------------------------------- commands

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func usageErr(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// A command registers its flags on fs and returns the function that runs it.
type command func(fs *flag.FlagSet, c *common) (defaultTimeoutMs int, run func(d *deadline) (int, error))

var commands = map[string]command{
	"produce-consume":    produceConsumeCmd,
	"group":              groupCmd,
	"verifiable-produce": verifiableProduceCmd,
	"read":               readCmd,
	"transactions":       transactionsCmd,
	"policy-produce":     policyProduceCmd,
	"large-records":      largeRecordsCmd,
	"create-topic":       createTopicCmd,
	"batches":            batchesCmd,
	"admin":              adminCmd,
}

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	setContext("driver", "strait-franz")
	setContext("client", "franz-go "+franzVersion())
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			summary(false, obj{"error": "usage: missing command"})
			return exitUsage
		}
		return exitOK
	}
	name := args[0]
	cmd, found := commands[name]
	rest := args[1:]
	if name == "large-records" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		setContext("mode", rest[0])
	}
	if !found {
		fmt.Fprint(os.Stderr, usage)
		summary(false, obj{"error": "usage: unknown command " + name})
		return exitUsage
	}
	setContext("command", name)
	fs := flag.NewFlagSet("strait-franz "+name, flag.ContinueOnError)
	c := common{command: name}
	defTimeout, run := cmd(fs, &c)
	c.register(fs, defTimeout)
	if name == "large-records" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fs.Usage()
			summary(false, obj{"error": "usage: large-records needs a mode: produce or consume"})
			return exitUsage
		}
		largeMode = rest[0]
		rest = rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		summary(false, obj{"error": "usage: " + err.Error()})
		return exitUsage
	}
	if fs.NArg() > 0 {
		summary(false, obj{"error": "usage: unexpected arguments " + strings.Join(fs.Args(), " ")})
		return exitUsage
	}
	if f := fs.Lookup("timeout-s"); f != nil && f.Value.String() != "0" {
		secs, err := strconv.ParseFloat(f.Value.String(), 64)
		if err != nil || secs <= 0 {
			summary(false, obj{"error": "usage: --timeout-s must be > 0"})
			return exitUsage
		}
		c.timeoutMs = int(secs * 1000)
	}
	if c.bootstrap == "" {
		summary(false, obj{"error": "usage: --bootstrap is required"})
		return exitUsage
	}
	if c.timeoutMs <= 0 {
		summary(false, obj{"error": "usage: --timeout-ms must be > 0"})
		return exitUsage
	}
	setContext("bootstrap", c.bootstrap)
	d := newDeadline(c.timeoutMs)
	startWatchdog(d)
	code, err := safeRun(run, d)
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "strait-franz "+name+": "+u.msg)
			summary(false, obj{"error": "usage: " + u.msg})
			return exitUsage
		}
		logf("%s failed: %v", name, err)
		return summary(false, obj{"error": err.Error(), "elapsed_ms": d.elapsedMs()})
	}
	return code
}

// safeRun turns a panic into an error (reported in the summary).
func safeRun(run func(*deadline) (int, error), d *deadline) (code int, err error) {
	defer func() {
		if r := recover(); r != nil {
			logf("panic: %v\n%s", r, debug.Stack())
			code, err = exitFail, fmt.Errorf("panic: %v", r)
		}
	}()
	return run(d)
}

func franzVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == "github.com/twmb/franz-go" {
				return m.Version
			}
		}
	}
	return "unknown"
}

// kv parses repeated k=v flags.
type kvList []string

func (l *kvList) String() string     { return strings.Join(*l, ",") }
func (l *kvList) Set(v string) error { *l = append(*l, v); return nil }
