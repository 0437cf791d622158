package notify

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lemonvox/lemonvox/vmstore"
)

// NATSSink publishes the same RFC 5423 JSON as the webhooks to a NATS
// JetStream stream, for fleets of appliances and many consumers. Subjects
// are per account and event: <Prefix>.<account>.<event>, where "." in an
// account or event name is written "%2E" (NATS subjects split on ".").
// The Nats-Msg-Id is the webhook-id ("evt_<seq>_<tag>"), so JetStream drops
// the duplicates a restart re-delivers within the stream's duplicate window.
type NATSSink struct {
	// ID is the sink name; default "nats".
	ID string
	// URL of the NATS server(s), comma-separated. Required.
	URL string
	// Options for nats.Connect (credentials, TLS ...).
	Options []nats.Option
	// Stream is created or updated to capture <Prefix>.>; default "LEMONVOX".
	Stream string
	// Prefix of the subjects; default "lemonvox.events".
	Prefix string
	// Duplicates is the stream's duplicate window; 0 means 10 minutes.
	Duplicates time.Duration
	// Payload builds the JSON; its ServerName is required.
	Payload PayloadBuilder
	// Events and Accounts filter as for WebhookSink.
	Events   []vmstore.EventType
	Accounts []string
	Logger   *slog.Logger

	nc     *nats.Conn
	js     jetstream.JetStream
	filter WebhookSink // reuses the filter maps
	idTag  string
}

// Initialize connects and makes sure the stream exists.
func (n *NATSSink) Initialize() error {
	if n.ID == "" {
		n.ID = "nats"
	}
	if n.Stream == "" {
		n.Stream = "LEMONVOX"
	}
	if n.Prefix == "" {
		n.Prefix = "lemonvox.events"
	}
	if n.Duplicates <= 0 {
		n.Duplicates = 10 * time.Minute
	}
	if n.URL == "" || n.Payload.ServerName == "" || !sinkNameRE.MatchString(n.ID) {
		return fmt.Errorf("%w: NATSSink needs ID, URL and Payload.ServerName", ErrConfig)
	}
	n.filter.events = map[vmstore.EventType]bool{}
	for _, e := range n.Events {
		n.filter.events[e] = true
	}
	n.filter.account = map[string]bool{}
	for _, a := range n.Accounts {
		n.filter.account[a] = true
	}
	h := fnv.New32a()
	h.Write([]byte(n.ID))
	n.idTag = strconv.FormatUint(uint64(h.Sum32()), 36)
	opts := append([]nats.Option{nats.Name("lemonvox-notify"), nats.MaxReconnects(-1)}, n.Options...)
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		return fmt.Errorf("notify: nats connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("notify: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: n.Stream, Subjects: []string{n.Prefix + ".>"},
		Duplicates: n.Duplicates}); err != nil {
		nc.Close()
		return fmt.Errorf("notify: jetstream stream %s: %w", n.Stream, err)
	}
	n.nc, n.js = nc, js
	return nil
}

// Close drains the connection.
func (n *NATSSink) Close() {
	if n.nc != nil {
		_ = n.nc.Drain()
	}
}

// Name implements Sink.
func (n *NATSSink) Name() string { return n.ID }

// Accept implements Sink.
func (n *NATSSink) Accept(ev *vmstore.Event) bool { return n.filter.Accept(ev) }

// Subject is the subject an event is published on.
func (n *NATSSink) Subject(ev *vmstore.Event) string {
	esc := strings.NewReplacer(".", "%2E", " ", "%20", "*", "%2A", ">", "%3E")
	return n.Prefix + "." + esc.Replace(ev.User) + "." + esc.Replace(string(ev.Type))
}

// Deliver implements Sink: a JetStream publish acknowledged by the stream.
func (n *NATSSink) Deliver(ctx context.Context, ev *vmstore.Event, _ int) error {
	body, err := n.Payload.Build(ev)
	if err != nil {
		return Permanent(err)
	}
	id := "evt_" + strconv.FormatUint(ev.Seq, 10) + "_" + n.idTag
	if _, err := n.js.Publish(ctx, n.Subject(ev), body, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("%w: nats publish: %v", ErrDelivery, err)
	}
	return nil
}
