package channels

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

// branchRights is an app with rt/stage following main, where the pusher is a
// deployer, and rt/other following branch other, where it holds role (none
// when ""); branch free is followed by nobody.
func branchRights(t *testing.T, role string) (*testEngine, func(env string, a Action) bool) {
	te := newTestEngine(t, "rt")
	ctx := context.Background()
	for _, env := range []string{"stage", "other"} {
		if _, err := te.CreateEnvironment(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := te.Install(ctx, "rt", "stage", "main", "", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := te.Install(ctx, "rt", "other", "other", "", "admin"); err != nil {
		t.Fatal(err)
	}
	user, err := te.store.CreateUser(ctx, "mallory", false)
	if err != nil {
		t.Fatal(err)
	}
	te.store.SetGrant(ctx, "mallory", "stage", store.RoleDeployer)
	if role != "" {
		if err := te.store.SetGrant(ctx, "mallory", "other", role); err != nil {
			t.Fatal(err)
		}
	}
	user, _ = te.store.UserByName(ctx, "mallory")
	return te, func(env string, a Action) bool { return te.Can(ctx, user, env, a) }
}

func TestBranchRightsEveryRoleAndUpdate(t *testing.T) {
	const a, b = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	updates := map[string]RefUpdate{
		"fast-forward": {Old: a, New: b},
		"create":       {Old: zeroID, New: b},
		"rewrite":      {Old: a, New: b, Rewrite: true},
		"delete":       {Old: a, New: zeroID},
	}
	for _, role := range []string{"", store.RoleViewer, store.RoleBackup, store.RoleDeployer, store.RoleAdmin} {
		te, can := branchRights(t, role)
		mayDeploy := role == store.RoleDeployer || role == store.RoleAdmin
		for kind, u := range updates {
			for _, branch := range []string{"other", "free"} {
				for _, force := range []bool{false, true} {
					name := fmt.Sprintf("role %q, %s of %s, force %v", role, kind, branch, force)
					u.Name = "refs/heads/" + branch
					refused, err := te.RefusedUpdates(context.Background(), "rt", []RefUpdate{u}, force, can)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want := branch == "other" && (!mayDeploy || (u.rewrites() && !force))
					if (len(refused) > 0) != want {
						t.Errorf("%s: refused %q, want refused %v", name, refused, want)
					}
					if len(refused) > 0 && !mayDeploy && (role == "" || role == store.RoleBackup) && refused[0] != "you may not update branch other" {
						t.Errorf("%s: a pusher who cannot see the environment reads %q", name, refused[0])
					}
				}
			}
		}
	}
}

func TestBranchRightsCountHiddenFollowers(t *testing.T) {
	te, can := branchRights(t, "")
	ctx := context.Background()
	// rt/other now follows main too: a deployer of stage alone may not move main.
	inst, _ := te.store.InstallationByName(ctx, "rt", "other")
	te.store.SetChannel(ctx, inst.ID, store.ChannelBranch, "main")
	u := RefUpdate{Name: "refs/heads/main", Old: zeroID, New: "2222222222222222222222222222222222222222"}
	refused, _ := te.RefusedUpdates(ctx, "rt", []RefUpdate{u}, true, can)
	if len(refused) != 1 || refused[0] != "you may not update branch main" || strings.Contains(refused[0], "other") {
		t.Fatalf("refused %q", refused)
	}
	// A viewer of the other environment is told which role it lacks.
	te.store.SetGrant(ctx, "mallory", "other", store.RoleViewer)
	refused, _ = te.RefusedUpdates(ctx, "rt", []RefUpdate{u}, true, can)
	if len(refused) != 1 || !strings.Contains(refused[0], "deployer role in other") {
		t.Fatalf("refused %q", refused)
	}
	// A pinned installation follows no branch.
	te.store.SetChannel(ctx, inst.ID, store.ChannelCommit, u.New)
	if refused, _ = te.RefusedUpdates(ctx, "rt", []RefUpdate{u}, false, can); len(refused) != 0 {
		t.Fatalf("refused %q with the other installation pinned", refused)
	}
}
