package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// admin: one admin request through franz-go's kmsg (what kadm wraps):
// create (CreateTopics; --partitions / --replication-factor unset = -1,
// the broker's defaults), incremental-alter (IncrementalAlterConfigs, SET
// per --config), alter (legacy AlterConfigs with exactly the --config set),
// delete (DeleteTopics), for each --topic. One {"type":"result","action",
// "topic","ok","code","name","message"} line per topic (message: the
// response's error_message, which franz-go hands to the application).
// ok: every topic succeeded; --expect-failure: none did, at least one failed.
func adminCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	action := fs.String("action", "", "create, incremental-alter, alter or delete")
	partitions := fs.Int("partitions", -1, "create: partitions (-1: broker default)")
	rf := fs.Int("replication-factor", -1, "create: replication factor (-1: broker default)")
	expectFailure := fs.Bool("expect-failure", false, "ok iff no topic succeeded and >= 1 failed")
	var topics, configs kvList
	fs.Var(&topics, "topic", "topic (repeatable)")
	fs.Var(&configs, "config", "k=v (repeatable)")
	return 30000, func(d *deadline) (int, error) {
		if len(topics) == 0 {
			return 0, usageErr("--topic is required")
		}
		type kv struct{ k, v string }
		var cfgs []kv
		for _, s := range configs {
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return 0, usageErr("--config expects k=v, got %q", s)
			}
			cfgs = append(cfgs, kv{k, v})
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		setContext("action", *action)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		ctx, cancel := d.capped(clientTimeout(d))
		defer cancel()
		type result struct {
			topic   string
			code    int16
			message *string
		}
		var results []result
		switch *action {
		case "create":
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 30000
			for _, t := range topics {
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, int32(*partitions), int16(*rf)
				for _, c := range cfgs {
					rc := kmsg.NewCreateTopicsRequestTopicConfig()
					rc.Name, rc.Value = c.k, kmsg.StringPtr(c.v)
					rt.Configs = append(rt.Configs, rc)
				}
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return 0, err
			}
			for _, t := range resp.Topics {
				results = append(results, result{t.Topic, t.ErrorCode, t.ErrorMessage})
			}
		case "incremental-alter":
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			for _, t := range topics {
				r := kmsg.NewIncrementalAlterConfigsRequestResource()
				r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, t
				for _, c := range cfgs {
					rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
					rc.Name, rc.Op, rc.Value = c.k, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(c.v)
					r.Configs = append(r.Configs, rc)
				}
				req.Resources = append(req.Resources, r)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return 0, err
			}
			for _, r := range resp.Resources {
				results = append(results, result{r.ResourceName, r.ErrorCode, r.ErrorMessage})
			}
		case "alter":
			req := kmsg.NewPtrAlterConfigsRequest()
			for _, t := range topics {
				r := kmsg.NewAlterConfigsRequestResource()
				r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, t
				for _, c := range cfgs {
					rc := kmsg.NewAlterConfigsRequestResourceConfig()
					rc.Name, rc.Value = c.k, kmsg.StringPtr(c.v)
					r.Configs = append(r.Configs, rc)
				}
				req.Resources = append(req.Resources, r)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return 0, err
			}
			for _, r := range resp.Resources {
				results = append(results, result{r.ResourceName, r.ErrorCode, r.ErrorMessage})
			}
		case "delete":
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = 30000
			req.TopicNames = append(req.TopicNames, topics...)
			for _, t := range topics {
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr(t)
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return 0, err
			}
			for _, t := range resp.Topics {
				name := ""
				if t.Topic != nil {
					name = *t.Topic
				}
				results = append(results, result{name, t.ErrorCode, t.ErrorMessage})
			}
		default:
			return 0, usageErr("--action must be create, incremental-alter, alter or delete")
		}
		succeeded, failed := 0, 0
		first := obj{}
		for _, r := range results {
			line := obj{"type": "result", "action": *action, "topic": r.topic, "ok": r.code == 0, "code": r.code}
			if e := kerr.ErrorForCode(r.code); e != nil {
				failed++
				line["name"] = e.(*kerr.Error).Message
				line["message"] = nullableString(r.message)
				if len(first) == 0 {
					first = obj{"first_name": line["name"], "first_message": line["message"], "first_code": r.code}
				}
			} else {
				succeeded++
			}
			emit(line)
		}
		ok := succeeded == len(topics)
		if *expectFailure {
			ok = succeeded == 0 && failed > 0
		}
		f := obj{"succeeded": succeeded, "failed": failed, "elapsed_ms": d.elapsedMs()}
		for k, v := range first {
			f[k] = v
		}
		if !ok {
			f["error"] = fmt.Sprintf("%d succeeded, %d failed of %d (expect failure: %v)", succeeded, failed, len(topics), *expectFailure)
		}
		return summary(ok, f), nil
	}
}

func nullableString(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
