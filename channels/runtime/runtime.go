// Package runtime holds what the operation engine (package channels) and the
// runtimes that serve it (channels/container over Incus, runtimetest in unit
// tests) must agree on beyond method signatures: the report of one instance.
// It imports nothing, so both sides import it and neither imports the other.
package runtime

// Instance is one instance a runtime lists: its name, the labels it was
// launched with, and whether it runs.
type Instance struct {
	Name    string
	Labels  map[string]string
	Running bool
}
