package hooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/store"
)

// The least each command asks for in environment prod, where shop/prod is
// installed: written out here, apart from the declarations, so a gate that
// lets too much (or too little) through fails this test.
var leastRole = map[string]string{
	"help": "", "version": "", "login": "", "ops": "", "key remove": "",
	"status": "viewer", "history": "viewer", "config": "viewer", "logs": "viewer", "limits": "viewer", "ps": "viewer", "scale": "deployer",
	"report list": "viewer", "report get": "viewer",
	"track": "deployer", "pin": "deployer", "restart": "deployer", "rebuild": "deployer", "config set": "deployer",
	"config unset": "deployer", "maintenance": "deployer", "run": "deployer", "cancel": "deployer",
	"domains list": "viewer", "certs list": "viewer", "db info": "viewer",
	"db create": "", "db list": "", "db reload": "deployer", "db attach": "deployer", "db detach": "deployer", "db deprovision": "admin",
	"db backup": "backup", "db backups": "backup", "db verify": "backup", "db restore": "admin", "db psql": "deployer", "backup copy": "backup", "db schedule": "backup", "db purge": "backup",
	"domains add": "deployer", "domains remove": "deployer", "https": "deployer", "certs set": "deployer", "certs renew": "deployer",
	"backup now": "backup", "backup list": "backup", "backup verify": "backup", "backup schedule": "backup", "backup purge": "backup",
	"install": "admin", "deprovision": "admin", "grant": "admin", "revoke": "admin", "access": "admin",
	"report make": "admin", "restore": "admin",
	"app create": "server", "app delete": "server", "env create": "server", "env delete": "server",
	"user add": "server", "user remove": "server", "users": "server",
	"key add": "self", "key list": "self",
}

// allows reports whether role (a role in prod, "server" for a global admin,
// "" for none) satisfies what a command asks for.
func allows(role, least string) bool {
	switch least {
	case "", "self": // self: the test names the caller's own account
		return true
	case "server":
		return role == "server"
	case "backup":
		return role == "backup" || role == "admin" || role == "server"
	case "viewer":
		return role == "viewer" || role == "deployer" || role == "admin" || role == "server"
	case "deployer":
		return role == "deployer" || role == "admin" || role == "server"
	case "admin":
		return role == "admin" || role == "server"
	}
	return false
}

// sampleArgs fills a command's usage with arguments naming things in prod.
func sampleArgs(usage, user string, op int64) []string {
	r := strings.NewReplacer("DATABASE", "shopdb", "APP/ENV2", "shop/prod", "APP/ENV", "shop/prod", "OP|", "", "ENV", "prod", "OP", fmt.Sprint(op),
		"USER", user, "NAME", user, "BACKUP", "1", "BRANCH", "main", "COMMIT|TAG", "main", "FINGERPRINT", "SHA256:x", "WEEK", "2026-W47",
		"KEY=VALUE...", "A=1", "KEY...", "A", "CMD...", "true")
	var out []string
	words := strings.Fields(usage)
	for _, w := range words[len(strings.Fields(commandKey(usage))):] {
		if inner := strings.Trim(w, "[]"); strings.HasPrefix(w, "[") && inner != "" && inner[0] >= 'A' && inner[0] <= 'Z' {
			w = inner // an optional argument: given, which asks the most
		} else if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "|") || strings.HasPrefix(w, "-") {
			break // optional flags and the --store form: the plain form is checked
		}
		if strings.Contains(w, "|") { // on|off, viewer|deployer|...
			w = strings.Split(w, "|")[0]
		}
		out = append(out, r.Replace(w))
	}
	return out
}

func TestGateEveryCommandEveryRole(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := channels.NewEngine(channels.Config{ReposDir: t.TempDir(), BaseDomain: "test", MaxParallel: 1}, st, nil, router.New(proxy.New(nil), nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer e.Close()
	st.CreateApp(ctx, "shop")
	st.CreateEnvironment(ctx, "prod")
	if _, err := st.CreateInstallation(ctx, "shop", "prod", "shop.prod.test", store.ChannelBranch, "main"); err != nil {
		t.Fatal(err)
	}
	op, _ := st.CreateOperation(ctx, store.Operation{Type: store.OpDeploy, App: "shop", Environment: "prod", User: "x"})
	if _, err := st.CreateDatabase(ctx, "shopdb", "prod", "15"); err != nil {
		t.Fatal(err)
	}
	if b, err := st.CreateBackup(ctx, store.Backup{Kind: store.BackupKindVolume, App: "shop", Environment: "prod", Volume: "data"}); err != nil || b.ID != 1 {
		t.Fatalf("backup 1: %+v %v", b, err)
	}
	s := &Server{store: st, engine: e}
	for _, role := range []string{"", "viewer", "backup", "deployer", "admin", "server"} {
		name := "u-" + role
		if role == "" {
			name = "nobody"
		}
		u, _ := st.CreateUser(ctx, name, role == "server")
		if role != "" && role != "server" {
			st.SetGrant(ctx, name, "prod", role)
		}
		c := &call{ctx: ctx, user: u}
		for k, cmd := range commands {
			least, ok := leastRole[k]
			if !ok {
				t.Errorf("command %q has no expected role in this test", k)
				continue
			}
			args := sampleArgs(cmd.usage, name, op.ID)
			err := cmd.gate(s, c, splitArgs(args))
			if want := allows(role, least); (err == nil) != want {
				t.Errorf("%s as %q (%s): gate says %v, want allowed %v", k, role, strings.Join(args, " "), err, want)
			}
			if err != nil && role == "" && strings.Contains(err.Error(), "prod") && !strings.HasPrefix(err.Error(), "unknown") {
				t.Errorf("%s tells a stranger about prod: %v", k, err)
			}
		}
		// Changing limits redeploys: deployers only.
		for _, flags := range [][]string{{"--cpu", "1"}, {"--memory=256MiB"}} {
			err := commands["limits"].gate(s, c, splitArgs(append([]string{"shop/prod"}, flags...)))
			if want := allows(role, "deployer"); (err == nil) != want {
				t.Errorf("limits %s as %q: gate says %v, want allowed %v", flags, role, err, want)
			}
		}
		// Provisioning a database is for the environment's admins.
		if err := commands["db create"].gate(s, c, splitArgs([]string{"newdb", "--env", "prod"})); (err == nil) != allows(role, "admin") {
			t.Errorf("db create --env prod as %q: %v", role, err)
		}
		// Store backups hold every environment's data: global admins only.
		for _, k := range []string{"backup now", "backup list", "backup purge"} {
			if err := commands[k].gate(s, c, splitArgs([]string{"--store"})); (err == nil) != (role == "server") {
				t.Errorf("%s --store as %q: %v", k, role, err)
			}
		}
	}
}

func TestSplitArgsKnowsWhichFlagsTakeValues(t *testing.T) {
	a := splitArgs([]string{"--branch", "main", "shop/prod", "--json", "--to-new=a/b", "--", "ls", "-l"})
	if strings.Join(a.pos, " ") != "shop/prod ls -l" || a.flags["branch"] != "main" || a.flags["to-new"] != "a/b" {
		t.Fatalf("split: %+v", a)
	}
	if _, ok := a.flags["json"]; !ok {
		t.Fatalf("--json missing: %+v", a)
	}
}
