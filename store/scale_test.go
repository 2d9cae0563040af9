package store

import (
	"context"
	"testing"
)

func TestMembersAndFormationTravelWithTheInstallation(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	s.CreateApp(ctx, "a")
	s.CreateEnvironment(ctx, "production")
	inst, err := s.CreateInstallation(ctx, "a", "production", "a.production.test", ChannelBranch, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetServing(ctx, inst.ID, "c1", "a-production-1", StateRunning, "h"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.InstallationByID(ctx, inst.ID)
	if len(got.Members) != 1 || got.Members[0] != (Member{Name: "a-production-1", Process: "web", StartedAt: got.Members[0].StartedAt}) || got.Members[0].StartedAt.IsZero() {
		t.Fatalf("one instance: %+v", got.Members)
	}
	first := got.Members[0].StartedAt
	sw := Swap{Commit: "c1", Instance: "a-production-1", State: StateRunning, EnvHash: "h",
		Members: []Member{
			{Name: "a-production-2-3", Process: "worker"},
			{Name: "a-production-2-2", Process: "web"},
			{Name: "a-production-1", Process: "web"},
		},
		Formation: map[string]int{"web": 2, "worker": 1},
	}
	if err := s.RecordSwap(ctx, inst.ID, sw); err != nil {
		t.Fatal(err)
	}
	got, _ = s.InstallationByID(ctx, inst.ID)
	var names []string
	for _, m := range got.Members {
		names = append(names, m.Name+":"+m.Process)
	}
	if len(names) != 3 || names[0] != "a-production-1:web" || names[1] != "a-production-2-2:web" || names[2] != "a-production-2-3:worker" {
		t.Fatalf("members in order primary, web, others: %v", names)
	}
	if !got.Members[0].StartedAt.Equal(first) {
		t.Fatalf("a kept instance keeps its start time: %v, was %v", got.Members[0].StartedAt, first)
	}
	if got.Formation["web"] != 2 || got.Formation["worker"] != 1 || len(got.Formation) != 2 {
		t.Fatalf("formation %v", got.Formation)
	}
	surge := 1
	if err := s.SetFormation(ctx, inst.ID, map[string]int{"web": 3}, &surge); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServing(ctx, inst.ID, "c2", "a-production-9", StateRunning, "h"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.InstallationByID(ctx, inst.ID)
	if len(got.Members) != 1 || got.Members[0].Name != "a-production-9" || got.Surge != 1 || got.Formation["web"] != 3 || len(got.Formation) != 1 {
		t.Fatalf("after SetFormation and SetServing: %+v", got)
	}
	if err := s.SetFormation(ctx, inst.ID, map[string]int{"web": -1}, nil); err == nil {
		t.Fatal("a negative count was stored")
	}
}
