package proxy

// CanonicalHost is the route key a Host header or configured host name
// becomes: without port or trailing dot, lower case.
func CanonicalHost(host string) string { return canonicalHost(host) }
