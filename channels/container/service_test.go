package container

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestShellQuoteSurvivesTheShell(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `"double" $HOME $(id) ; rm -rf / ` + "`x`", "new\nline", `back\slash'`, "'''"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != s {
			t.Errorf("%q came back as %q", s, out)
		}
	}
}

func TestWebScript(t *testing.T) {
	script, err := webScript("httpd -f -p $PORT -h /app/public", map[string]string{"PORT": "5000", "SECRET": "a'b c"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cd /app || exit 1\n",
		"export PORT='5000'\n",
		`export SECRET='a'\''b c'` + "\n",
		"echo $$ > /run/slipway/web.pid\n",
		"exec httpd -f -p $PORT -h /app/public\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	// The app's own PATH wins over the default.
	if strings.Index(script, "export PATH=/usr") > strings.Index(script, "export PORT") {
		t.Error("default PATH is set after the app's environment")
	}
	if _, err := webScript("true", map[string]string{"BAD-NAME": "x"}); !errors.Is(err, ErrBadName) {
		t.Errorf("bad env name: %v", err)
	}
	if _, err := webScript("  ", nil); !errors.Is(err, ErrBadName) {
		t.Errorf("empty command: %v", err)
	}
}

// A command runs the same whether the web script execs it itself or hands it
// to sh -c.
func TestSimpleCommandsRunTheSame(t *testing.T) {
	for _, c := range []struct {
		cmd    string
		simple bool
	}{
		{`printf '%s.' $PORT "a b" 'c d'`, true},
		{`printf '%s|' x`, false}, // safe, but the check does not read quotes
		{"printf %s-%s x*y $HOME", true},
		{"echo a; echo b", false},
		{"echo a && echo b", false},
		{"echo a > /dev/null", false},
		{"echo $(id -u)", false},
		{"FOO=bar env", false},
		{"if true; then echo y; fi", false},
		{"echo a # comment", false},
		{"echo a\necho b", false},
	} {
		if got := simpleCommand(c.cmd); got != c.simple {
			t.Errorf("simpleCommand(%q) = %v", c.cmd, got)
			continue
		}
		if !c.simple {
			continue
		}
		script, err := webScript(c.cmd, map[string]string{"PORT": "5000"})
		if err != nil {
			t.Fatal(err)
		}
		// The script as written, minus what only makes sense in an instance.
		script = strings.NewReplacer("cd /app || exit 1\n", "", "echo $$ > "+WebPID+"\n", "").Replace(script)
		direct, err1 := exec.Command("/bin/sh", "-c", script).Output()
		viaSh, err2 := exec.Command("/bin/sh", "-c", "PORT=5000; export PORT; exec /bin/sh -c "+shellQuote(c.cmd)).Output()
		if err1 != nil || err2 != nil || string(direct) != string(viaSh) {
			t.Errorf("%q: exec gave %q %v, sh -c gave %q %v", c.cmd, direct, err1, viaSh, err2)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "web-prod-3f2a", "A1"} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "a/b", "a..b", "a b", "-a", "a-", strings.Repeat("a", 64)} {
		if err := checkName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConnectUnreachable(t *testing.T) {
	t.Setenv("INCUS_SOCKET", t.TempDir()+"/no.socket")
	_, err := Connect("slipway-test", nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "incus is not reachable at ") {
		t.Fatalf("Connect: %v", err)
	}
}
