// Command testhandler is a custom handler for devhost's own tests. It uses the real handlers package
// (route table), runtime (envelope decoding, server) and queue router with test services: a worker (of
// kind "test") that fails until a message's DeliveryCount reaches the number in its body, and a timer
// that counts its runs. Every processed
// message and timer run is reported to RECORD_URL so the test sees exactly what the handler saw.
// A message with "failWhileFileExists" fails as a PBX outage would while that file exists.
// TESTHANDLER_GATE_FILE, while the file exists, keeps the handler from listening (a slow start).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/queue"
)

func record(kind string, v any) {
	b, _ := json.Marshal(map[string]any{"kind": kind, "value": v})
	resp, err := http.Post(os.Getenv("RECORD_URL"), "application/json", bytes.NewReader(b))
	if err == nil {
		resp.Body.Close()
	}
}

type worker struct{}

func (worker) Process(_ context.Context, d *queue.Delivery) error {
	var body struct {
		SucceedOnDelivery   int    `json:"succeedOnDelivery"`
		FailWhileFileExists string `json:"failWhileFileExists"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		return err
	}
	record("delivery", map[string]any{"id": d.MessageID, "count": d.DeliveryCount, "session": d.SessionID, "props": d.ApplicationProperties})
	if body.FailWhileFileExists != "" && exists(body.FailWhileFileExists) {
		// A fault an operator can remove (a PBX down): transient, so the message is retried, not parked.
		return apperr.New(apperr.Unavailable, "pbx unavailable (test fault)", errors.New("connection refused"))
	}
	if d.DeliveryCount < body.SucceedOnDelivery {
		return fmt.Errorf("not yet: delivery %d", d.DeliveryCount)
	}
	record("processed", d.MessageID)
	return nil
}

// parker records what the router parks (a permanent failure, an unknown kind).
type parker struct{}

func (parker) Park(_ context.Context, _ string, d *queue.Delivery, _ error) error {
	record("parked", d.MessageID)
	return nil
}

type timerJob struct{}

func (timerJob) Run(context.Context) error { record("timer", "RenewSubscriptions"); return nil }

// idleJob stands for the timers devhost's tests do not watch: if a schedule fires one, nothing is
// recorded that a test counts.
type idleJob struct{}

func (idleJob) Run(context.Context) error { return nil }

type intake struct{ sender queue.Sender }

// testKind is the one notification kind with a worker here; ProcessNotification routes by kind as the
// real handler does, so a message of any other kind shows what the router does with it.
const testKind = "test"

// ReceiveScanned forwards the body as one message, so the test can drive webhook → queue → worker.
func (i intake) ReceiveScanned(ctx context.Context, _ bool, body []byte, _ []int32) error {
	return i.sender.Send(ctx, queue.Notifications, []queue.Message{{ID: string(body), Body: []byte(`{"succeedOnDelivery":1}`),
		ApplicationProperties: map[string]string{queue.PropKind: testKind}}})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	port, _ := strconv.Atoi(os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"))
	sender, err := queue.NewDevhostSender(os.Getenv("CONNECTHUB_DEVHOST_QUEUE_URL"), os.Getenv("CONNECTHUB_DEVHOST_QUEUE_TOKEN"))
	if err != nil {
		panic(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router, err := queue.NewRouter(queue.Notifications, parker{}, nil, log)
	if err != nil {
		panic(err)
	}
	if err := router.Handle(testKind, worker{}); err != nil {
		panic(err)
	}
	a := &handlers.App{MaxBodyBytes: 1 << 20, ProcessNotification: router, ProcessLifecycle: worker{},
		RenewSubscriptions: timerJob{}, EnforceRetention: timerJob{}, ReconcileLicenses: timerJob{},
		Intake: intake{sender}, PBXWebhook: struct{ handlers.PBXIntake }{}, Region: "westeurope",
		Stats: func(core.TenantID) any { return map[string]any{"unroutable": router.Unroutable()} },
		// devhost's tests call none of the admin functions; these stand-ins only let the route table build
		// (a call would panic and fail the invocation).
		Presence:  handlers.PresenceServices{SignIn: struct{ handlers.ServiceUserSignIn }{}, Status: struct{ handlers.PresenceStatus }{}},
		Connector: handlers.ConnectorServices{Admin: struct{ handlers.ConnectorAdmin }{}},
		Tenants:   handlers.TenantServices{Admin: struct{ handlers.TenantAdmin }{}, List: struct{ handlers.TenantLister }{}},
		Audit:     struct{ handlers.AuditReader }{},
		Access:    handlers.AccessServices{Authenticate: staffToken{}, Authorize: staffToken{}, Admin: struct{ handlers.AccessAdmin }{}},
		Privacy:   struct{ handlers.PrivacyRights }{}, TenantExport: struct{ handlers.TenantExporter }{},
		Incidents: struct{ handlers.IncidentServices }{}, TrackIncidents: idleJob{},
		Rooms: handlers.RoomServices{Directory: struct{ handlers.RoomDirectory }{}, Availability: struct{ handlers.RoomAvailability }{}, Cache: struct{ handlers.RoomCache }{},
			Sync: idleJob{}, Maintain: idleJob{}},
		CRM:    handlers.CRMServices{Admin: struct{ handlers.CRMAdmin }{}, Sync: idleJob{}},
		CRMNow: struct{ handlers.CRMSyncNow }{},
		Portal: struct{ handlers.Portal }{},
	}
	routes, err := a.Routes()
	if err != nil {
		panic(err)
	}
	// A gate file holds a (re)started handler before it listens, as a slow start would: devhost must not
	// publish it, nor deliver to it, until it answers.
	if gate := os.Getenv("TESTHANDLER_GATE_FILE"); gate != "" {
		for exists(gate) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	srv := azfunc.NewServer(routes, 5*time.Second, 1<<20, log)
	srv.WorkerID = os.Getenv("FUNCTIONS_CUSTOMHANDLER_WORKER_ID")
	if err := srv.Serve(ctx, port, nil); err != nil {
		panic(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// staffToken admits the one token devhost's tests send to read Health's counters.
type staffToken struct{}

func (staffToken) Authenticate(h string) (access.Principal, error) {
	if h != "Bearer devhost-test-staff" {
		return access.Principal{}, access.ErrNoToken
	}
	return access.Principal{Tenant: "0e0e0e0e-0000-4000-8000-0000000000ff", ObjectID: "devhost-test"}, nil
}

func (staffToken) Allow(context.Context, access.Principal, access.Permission, access.Resource) error {
	return nil
}
