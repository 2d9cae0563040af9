package store

import "testing"

func TestLimitsString(t *testing.T) {
	for l, want := range map[Limits]string{
		{}:                          "none",
		{CPU: 1}:                    "1 CPU, no memory limit",
		{CPU: 2, Memory: 512 << 20}: "2 CPUs, 512 MiB memory",
		{Memory: 3 << 29}:           "no CPU limit, 1.5 GiB memory",
		{Memory: 64e6}:              "no CPU limit, 61 MiB memory",
	} {
		if got := l.String(); got != want {
			t.Errorf("%+v: %q, want %q", l, got, want)
		}
	}
}
