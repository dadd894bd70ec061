package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

// deadLetterQueue is what the dlq commands need of a queue's dead letters. There are two: devhost's admin
// API (make run) and Service Bus's dead-letter subqueue (servicebus_dlq.go).
type deadLetterQueue interface {
	List(ctx context.Context, queue string) ([]devhost.DeadLetter, error)
	// Show returns the dead letter with message id, body included.
	Show(ctx context.Context, queue, id string) (devhost.DeadLetter, error)
	// Replay resubmits it (same MessageId, body and application properties) and removes the dead letter;
	// it says where it went.
	Replay(ctx context.Context, queue, id string) (string, error)
	Purge(ctx context.Context, queue, id string) error
	Close(ctx context.Context) error
}

// dlqFlags are the flags every dlq command takes.
type dlqFlags struct {
	sf        *storeFlags
	namespace *string
	host      *string
	queue     *string
	id        *string
	all       *bool
	window    *time.Duration
}

func (c *cli) dlqFlagSet(name, synopsis, about string, withID, withAll bool) (*dlqFlags, func([]string) error) {
	fs, sf := c.newLocalFlags("dlq "+name, synopsis, about, "make run's local settings (devhost's master key and port)")
	f := &dlqFlags{sf: sf}
	f.namespace = fs.String("namespace", "", "Service Bus namespace (<ns>.servicebus.windows.net); uses az login. Without it: devhost")
	f.host = fs.String("host", "", "devhost base URL (default http://127.0.0.1:<Host.LocalHttpPort or 7071>)")
	f.queue = fs.String("queue", "", "the queue whose dead letters to act on: "+queue.Notifications+" or "+queue.Lifecycle)
	empty, no := "", false
	f.id, f.all = &empty, &no
	if withID {
		f.id = fs.String("id", "", "the message id (MessageId)")
	}
	if withAll {
		f.all = fs.Bool("all", false, "every dead letter of the queue instead of one --id")
	}
	f.window = fs.Duration("duplicate-window", 10*time.Minute,
		"Service Bus only: the queue's duplicate detection window (infra: PT10M); a resubmission inside it would be dropped")
	return f, func(args []string) error {
		if err := parse(fs, args); err != nil {
			return err
		}
		if *f.queue == "" {
			return usagef("--queue is required")
		}
		switch {
		case withAll && *f.all && *f.id != "":
			return usagef("give --id or --all, not both")
		case withAll && !*f.all && *f.id == "":
			return usagef("--id or --all is required")
		case withID && !withAll && *f.id == "":
			return usagef("--id is required")
		}
		return nil
	}
}

// openDLQ opens devhost's or Service Bus's dead letters, as the flags say.
func (c *cli) openDLQ(f *dlqFlags) (deadLetterQueue, error) {
	if *f.namespace != "" {
		settingsSet := false
		f.sf.fs.Visit(func(fl *flag.Flag) { settingsSet = settingsSet || fl.Name == "settings" })
		if settingsSet || *f.host != "" {
			return nil, usagef("--namespace names Service Bus; --settings and --host name devhost: give one")
		}
		ns := strings.TrimPrefix(strings.TrimSuffix(*f.namespace, "/"), "sb://")
		if !strings.HasSuffix(ns, ".servicebus.windows.net") || strings.ContainsAny(ns, "/:") {
			return nil, usagef("--namespace: want <ns>.servicebus.windows.net, got %q", *f.namespace)
		}
		return c.openServiceBus(ns, *f.window)
	}
	if _, err := os.Stat(f.sf.settings); err != nil {
		return nil, usagef("%s not found: give --settings FILE (make run) or --namespace <ns>.servicebus.windows.net", f.sf.settings)
	}
	settings, err := devhost.ReadLocalSettings(f.sf.settings)
	if err != nil {
		return nil, err
	}
	master := settings.Values[devhost.SettingMasterKey]
	if master == "" {
		return nil, fmt.Errorf("%s: %s is not set (make run generates it)", f.sf.settings, devhost.SettingMasterKey)
	}
	base := *f.host
	if base == "" {
		port := settings.Host.LocalHTTPPort
		if port == 0 {
			port = 7071
		}
		base = "http://127.0.0.1:" + strconv.Itoa(port)
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, usagef("--host: want http://127.0.0.1:7071, got %q", base)
	}
	return &devhostDLQ{base: strings.TrimSuffix(base, "/"), key: master, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (c *cli) dlqList(ctx context.Context, args []string) error {
	f, parseArgs := c.dlqFlagSet("list", "dlq list --queue Q [--settings F | --namespace NS]",
		"Lists a queue's dead letters: message id, delivery count, when it was enqueued, tenant, reason and\n"+
			"description (the last failure). Bodies are not printed.", false, false)
	if err := parseArgs(args); err != nil {
		return err
	}
	d, err := c.openDLQ(f)
	if err != nil {
		return err
	}
	defer d.Close(ctx)
	list, err := d.List(ctx, *f.queue)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(c.stdout, "no dead letters in %s\n", *f.queue)
		return nil
	}
	sort.Slice(list, func(i, j int) bool { return list[i].SequenceNumber < list[j].SequenceNumber })
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE ID\tDELIVERIES\tENQUEUED\tTENANT\tREASON\tDESCRIPTION")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", m.MessageID, m.DeliveryCount, formatTime(m.EnqueuedTime), orDash(m.Tenant),
			orDash(m.DeadLetterReason), orDash(oneLine(m.DeadLetterErrorDescription)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d dead letter(s) in %s\n", len(list), *f.queue)
	return nil
}

func (c *cli) dlqShow(ctx context.Context, args []string) error {
	f, parseArgs := c.dlqFlagSet("show", "dlq show --queue Q --id ID [--settings F | --namespace NS]",
		"Shows one dead letter: its reason, description, counts, times and application properties, and the\n"+
			"size of its body (never the body: it may hold personal data).", true, false)
	if err := parseArgs(args); err != nil {
		return err
	}
	d, err := c.openDLQ(f)
	if err != nil {
		return err
	}
	defer d.Close(ctx)
	m, err := d.Show(ctx, *f.queue, *f.id)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("message id", m.MessageID)
	row("sequence number", strconv.FormatInt(m.SequenceNumber, 10))
	row("session id", m.SessionID)
	row("tenant", m.Tenant)
	row("enqueued", formatTime(m.EnqueuedTime))
	row("delivery count", strconv.Itoa(m.DeliveryCount))
	row("reason", m.DeadLetterReason)
	row("description", oneLine(m.DeadLetterErrorDescription))
	row("content type", m.ContentType)
	row("subject", m.Subject)
	row("body", fmt.Sprintf("%d bytes", max(m.BodySize, len(m.Body))))
	keys := make([]string, 0, len(m.ApplicationProperties))
	for k := range m.ApplicationProperties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("property "+k, m.ApplicationProperties[k])
	}
	return tw.Flush()
}

func (c *cli) dlqReplay(ctx context.Context, args []string) error {
	f, parseArgs := c.dlqFlagSet("replay", "dlq replay --queue Q (--id ID | --all) [--settings F | --namespace NS]",
		"Resubmits dead letters to their queue: a new message with the same MessageId, body, session and every\n"+
			"application property, delivery count starting again; the dead letter is removed. Fix the cause first.\n"+
			"A message enqueued within the queue's duplicate detection window (10 min) cannot be resubmitted yet:\n"+
			"Service Bus would drop it as a duplicate.", true, true)
	if err := parseArgs(args); err != nil {
		return err
	}
	return c.eachDeadLetter(ctx, f, "replayed", func(d deadLetterQueue, id string) (string, error) {
		return d.Replay(ctx, *f.queue, id)
	})
}

func (c *cli) dlqPurge(ctx context.Context, args []string) error {
	f, parseArgs := c.dlqFlagSet("purge", "dlq purge --queue Q (--id ID | --all) [--settings F | --namespace NS]",
		"Deletes dead letters for good (after they were replayed elsewhere or judged worthless).", true, true)
	if err := parseArgs(args); err != nil {
		return err
	}
	return c.eachDeadLetter(ctx, f, "purged", func(d deadLetterQueue, id string) (string, error) {
		return "", d.Purge(ctx, *f.queue, id)
	})
}

// eachDeadLetter applies do to --id, or with --all to every dead letter listed now; one failure does not
// stop the others, and all are reported.
func (c *cli) eachDeadLetter(ctx context.Context, f *dlqFlags, verb string, do func(deadLetterQueue, string) (string, error)) error {
	d, err := c.openDLQ(f)
	if err != nil {
		return err
	}
	defer d.Close(ctx)
	ids := []string{*f.id}
	if *f.all {
		list, err := d.List(ctx, *f.queue)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, m := range list {
			ids = append(ids, m.MessageID)
		}
	}
	var errs []error
	done := 0
	for _, id := range ids {
		where, err := do(d, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		done++
		if where != "" {
			where = " (" + where + ")"
		}
		fmt.Fprintf(c.stdout, "%s %s%s\n", verb, id, where)
	}
	fmt.Fprintf(c.stdout, "%d of %d %s in %s\n", done, len(ids), verb, *f.queue)
	return errors.Join(errs...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a description on its row.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// devhostDLQ is devhost's dead-letter admin API (make run), with the master key from local.settings.json.
type devhostDLQ struct {
	base, key string
	client    *http.Client
}

var _ deadLetterQueue = (*devhostDLQ)(nil)

func (d *devhostDLQ) do(ctx context.Context, method, q, id, suffix string, out any) error {
	path := "/admin/queues/" + url.PathEscape(q) + "/deadletter"
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path+suffix, nil)
	if err != nil {
		return err
	}
	req.Header.Set("x-functions-key", d.key)
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("ask devhost (is make run running?): %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("devhost answered %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("read devhost answer: %w", err)
	}
	return nil
}

func (d *devhostDLQ) List(ctx context.Context, q string) ([]devhost.DeadLetter, error) {
	var out struct {
		DeadLetters []devhost.DeadLetter `json:"deadLetters"`
	}
	err := d.do(ctx, http.MethodGet, q, "", "", &out)
	return out.DeadLetters, err
}

func (d *devhostDLQ) Show(ctx context.Context, q, id string) (devhost.DeadLetter, error) {
	var out devhost.DeadLetter
	err := d.do(ctx, http.MethodGet, q, id, "", &out)
	return out, err
}

func (d *devhostDLQ) Replay(ctx context.Context, q, id string) (string, error) {
	var out devhost.ReplayResult
	if err := d.do(ctx, http.MethodPost, q, id, "/replay", &out); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, sequence number %d", q, out.SequenceNumber), nil
}

func (d *devhostDLQ) Purge(ctx context.Context, q, id string) error {
	return d.do(ctx, http.MethodDelete, q, id, "", nil)
}

func (d *devhostDLQ) Close(context.Context) error { return nil }
