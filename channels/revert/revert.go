// Package revert collects the undo steps of a multi-step change, as Incus's
// shared/revert does: every step that creates something registers how to
// undo it; Fail runs them newest first, Success forgets them. The engine's
// deploys and package backup's restores use it.
package revert

// Reverter is the undo steps of one change; its zero value has none.
type Reverter struct {
	undo []func() error
}

// Add registers the undo of a step just done.
func (r *Reverter) Add(f func() error) { r.undo = append(r.undo, f) }

// Fail runs the undo steps in reverse and returns the first error.
func (r *Reverter) Fail() error {
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
func (r *Reverter) Success() { r.undo = nil }
