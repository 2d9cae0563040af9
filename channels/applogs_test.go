package channels

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/applog"
	"github.com/slipway-dev/slipway/store"
)

// What the serving instance prints reaches the app logs with secrets masked,
// and reading them is recorded as a logs operation.
func TestAppLogsCollectedMaskedAndRecorded(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	ctx := context.Background()
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	op, err := te.Configure(ctx, "web", "prod", map[string]string{"TOKEN": "s3cr3t-token-value"}, true, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	te.wait(op)
	now, _ := te.store.InstallationByID(ctx, inst.ID)
	te.startCollector()
	if err := te.rt.Print(now.Instance, "web", "started with s3cr3t-token-value"); err != nil {
		t.Fatal(err)
	}
	var got []applog.Record
	deadline := time.Now().Add(5 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = nil
		err = te.AppLogs(ctx, "web", "prod", "bob", AppLogRequest{}, func(r applog.Record) error {
			got = append(got, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].Line != "started with "+redacted || got[0].Instance != now.Instance || got[0].Process != "web" {
		t.Fatalf("app logs = %+v", got)
	}
	ops, _ := te.store.Operations(ctx, store.OperationFilter{Type: string(store.OpLogs)})
	if len(ops) == 0 || ops[0].User != "bob" || !strings.Contains(te.log(ops[0].ID), "bob read the app logs of web/prod") {
		t.Errorf("logs operations: %+v", ops)
	}
}

// A serving instance found stopped at start (a host reboot) is replaced by a
// restart operation: its supervisor keeps the processes in memory only.
func TestRecoverRestartsStoppedInstance(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	ctx := context.Background()
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	before, _ := te.store.InstallationByID(ctx, inst.ID)
	if err := te.rt.Stop(ctx, before.Instance); err != nil {
		t.Fatal(err)
	}
	if err := te.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	ops, _ := te.store.Operations(ctx, store.OperationFilter{Type: string(store.OpRestart)})
	if len(ops) != 1 || ops[0].User != "slipway" {
		t.Fatalf("restart operations after recovery: %+v", ops)
	}
	if op := te.wait(ops[0]); op.Status != store.StatusSucceeded {
		t.Fatalf("restart %s: %s", op.Status, te.log(op.ID))
	}
	if code, body := te.serving(inst.Host); code != 200 || body == before.Instance {
		t.Errorf("after recovery %s serves %d %q", inst.Host, code, body)
	}
}
