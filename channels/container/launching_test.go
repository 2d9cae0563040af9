package container

// Launching reports whether a Launch of name is in flight (for tests that
// must ask Booted only once it is).
func (c *Incus) Launching(name string) bool { return c.launchOf(name) != nil }
