package backup

import "testing"

func TestCompareFilesNamesTheDifferences(t *testing.T) {
	want := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
	if err := compareFiles(want, want); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"a": "1", "b": "x", "z": "9"}
	err := compareFiles(want, got)
	if err == nil || err.Error() != "the restored copy differs from the backup: 3 missing (c, d, e); 1 changed (b); 1 not in the backup (z)" {
		t.Fatalf("compare: %v", err)
	}
}
