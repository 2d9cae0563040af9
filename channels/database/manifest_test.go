package database

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareTablesNamesEachDifference(t *testing.T) {
	want := []Table{{Name: "public.a", Rows: 2, Sum: "1:2"}, {Name: "public.b", Rows: 1, Sum: "3:4"}, {Name: "public.c", Rows: 5, Sum: "5:6"}}
	if err := compareTables(want, want); err != nil {
		t.Fatalf("equal tables: %v", err)
	}
	got := []Table{{Name: "public.a", Rows: 3, Sum: "1:2"}, {Name: "public.b", Rows: 1, Sum: "9:9"}, {Name: "public.d", Rows: 1, Sum: "0:0"}}
	err := compareTables(want, got)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v", err)
	}
	for _, s := range []string{"table public.a has 3 rows, 2 at dump time", "table public.b has other rows", "table public.c is missing", "table public.d (1 rows) was not there"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q not in %v", s, err)
		}
	}
}

func TestParseTablesRefusesNoise(t *testing.T) {
	got, err := parseTables([]string{`{"name":"public.\"we ird\"","rows":3,"sum":"10:-4"}`})
	if err != nil || len(got) != 1 || got[0].Name != `public."we ird"` || got[0].Rows != 3 || got[0].Sum != "10:-4" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseTables([]string{"NOTICE: hello"}); err == nil {
		t.Error("a stray line was taken for a table")
	}
}
