package channels

// reverter collects the undo steps of a multi-step change, as Incus's
// shared/revert does: every step that creates something registers how to undo
// it; Fail runs them newest first, Success forgets them.
type reverter struct {
	undo []func() error
}

func (r *reverter) Add(f func() error) { r.undo = append(r.undo, f) }

// Fail runs the undo steps in reverse and returns the first error.
func (r *reverter) Fail() error {
	var first error
	for i := len(r.undo) - 1; i >= 0; i-- {
		if err := r.undo[i](); err != nil && first == nil {
			first = err
		}
	}
	r.undo = nil
	return first
}

// Success drops the undo steps: the change stands.
func (r *reverter) Success() { r.undo = nil }
