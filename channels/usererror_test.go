package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestErrorsForPeopleCarryKindAndWholeMessage(t *testing.T) {
	te := newTestEngine(t, "web")
	ctx := context.Background()
	for _, c := range []struct {
		err      error
		sentinel error
		kind     Kind
		status   int
		msg      string
	}{
		{CheckName("app", "a/b"), ErrInvalidName, KindInvalid, http.StatusBadRequest, `app name "a/b" may not contain '/', '.', '..' or spaces; use lowercase letters, digits and dashes`},
		{func() error { _, err := te.CreateApp(ctx, "web"); return err }(), ErrExists, KindConflict, http.StatusConflict, "app web already exists"},
		{func() error { _, err := te.Restart(ctx, "web", "nowhere", "a"); return err }(), ErrUnknownInstallation, KindNotFound, http.StatusNotFound, "unknown installation web/nowhere"},
		{fmt.Errorf("queue: %w", ErrShuttingDown), ErrShuttingDown, KindUnavailable, http.StatusServiceUnavailable, "queue: slipway is shutting down"},
	} {
		if !errors.Is(c.err, c.sentinel) {
			t.Errorf("%v is not %v", c.err, c.sentinel)
		}
		kind, msg, ok := ForPeople(c.err)
		if !ok || kind != c.kind || msg != c.msg || kind.HTTPStatus() != c.status {
			t.Errorf("ForPeople(%v) = %v %q %v, want %v %q", c.err, kind, msg, ok, c.kind, c.msg)
		}
	}
	if _, _, ok := ForPeople(errors.New("disk I/O error")); ok {
		t.Error("an internal error is for people")
	}
}
