package detect

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
	got, err := ParseProcfile([]byte("# the app\nweb: python3 app.py --port $PORT\r\n\n  worker:node worker.js  \nrelease: ./migrate: now\nclock_2-b: sh -c 'sleep 1'\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Process{
		{"web", "python3 app.py --port $PORT"},
		{"worker", "node worker.js"},
		{"release", "./migrate: now"}, // only the first colon separates
		{"clock_2-b", "sh -c 'sleep 1'"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestParseProcfileEmpty(t *testing.T) {
	got, err := ParseProcfile([]byte("\n# nothing yet\n"))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want nothing", got, err)
	}
}

func TestParseProcfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no colon", "web: a\nworker python w.py\n", "Procfile line 2: \"worker python w.py\" is not of the form `name: command`"},
		{"space in name", "my web: a\n", `Procfile line 1: process type "my web" may hold only letters, digits, _ and -`},
		{"dot in name", "web.1: a\n", `Procfile line 1: process type "web.1" may hold`},
		{"empty name", ": a\n", `Procfile line 1: process type "" may hold`},
		{"no command", "\n\nweb:   \n", "Procfile line 3: process type web has no command"},
		{"twice", "web: a\n# x\nweb: b\n", "Procfile line 3: process type web appears twice (first on line 1)"},
		{"long line", strings.Repeat("x", 200) + "\n", `Procfile line 1: "xxxxxxxx`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProcfile([]byte(tc.doc))
			var pe *ProcfileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ProcfileError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 160 {
				t.Fatalf("error %q is not one short line", err)
			}
		})
	}
}
