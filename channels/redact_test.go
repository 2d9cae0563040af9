package channels

import "testing"

func TestRedactHidesSecretsWholeAndInPart(t *testing.T) {
	var r redactor
	r.add("s3cr3t-value-0123456789")
	r.add("abc")
	r.add("ab") // too short to hide
	for _, c := range []struct{ in, want string }{
		{"token is s3cr3t-value-0123456789.", "token is ********."},
		{"first half: s3cr3t-value", "first half: ********"},
		{"second half: -0123456789 done", "second half: ******** done"},
		{"a b c abc ab", "a b c ******** ab"},
		{"9876543210-eulav-t3rc3s", "9876543210-eulav-t3rc3s"}, // reversed: cannot be caught
		{"s3cr3t-v and 01234567", "s3cr3t-v and 01234567"},     // runs of 8 or fewer stay
		{"x s3cr3t-value y -0123456789 z", "x ******** y ******** z"},
		{"no secret here at all", "no secret here at all"},
	} {
		if got := r.redact(c.in); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
