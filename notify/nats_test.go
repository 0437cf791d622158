package notify

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestNATSSinkEmbeddedJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	s := openStore(t, "")
	mustAccount(t, s, "+1555.vm.example.net", vmstore.AccountOptions{})
	n := &NATSSink{URL: ns.ClientURL(), Payload: PayloadBuilder{ServerName: "vm.test"}, Events: []vmstore.EventType{vmstore.EventMessageNew, vmstore.EventMessageRead}}
	if err := n.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	d := startDispatcher(t, s, t.TempDir(), n)
	res := deposit(t, s, "+1555.vm.example.net")
	markSeen(t, s, "+1555.vm.example.net", res)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, "LEMONVOX", jetstream.ConsumerConfig{FilterSubject: "lemonvox.events.+1555%2Evm%2Eexample%2Enet.>"})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for msg := range batch.Messages() {
		subjects = append(subjects, msg.Subject())
		var m struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(msg.Data(), &m); err != nil || m.Type == "" {
			t.Fatalf("payload %s: %v", msg.Data(), err)
		}
		if msg.Headers().Get("Nats-Msg-Id") == "" {
			t.Fatal("no Nats-Msg-Id")
		}
	}
	if len(subjects) != 2 || subjects[0] != "lemonvox.events.+1555%2Evm%2Eexample%2Enet.MessageNew" || subjects[1] != "lemonvox.events.+1555%2Evm%2Eexample%2Enet.MessageRead" {
		t.Fatalf("subjects %v", subjects)
	}
	// A re-delivery (as after a crash) is dropped by JetStream's dedupe.
	evs, _ := s.ReadJournal(0, 100)
	for _, ev := range evs {
		if ev.Type == vmstore.EventMessageNew {
			if err := n.Deliver(ctx, &ev, 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := js.Stream(ctx, "LEMONVOX")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream has %v messages (%v), want 2", info.State.Msgs, err)
	}
	_ = d
}
