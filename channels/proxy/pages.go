package proxy

import "net/http"

// maintenanceRetryAfter is the Retry-After, in seconds, sent with maintenance pages.
const maintenanceRetryAfter = "30"

// The proxy's own responses are one line of plain text: they are read by people with
// curl as often as by browsers, and a host header is never interpreted as HTML.

func writeUnknownHost(w http.ResponseWriter, host string) {
	http.Error(w, "no app is served at "+printableHost(host), http.StatusNotFound)
}

func writeNoInstance(w http.ResponseWriter, host string) {
	http.Error(w, "no instance is serving "+printableHost(host)+" yet", http.StatusServiceUnavailable)
}

func writeMaintenance(w http.ResponseWriter, host, message string) {
	if message == "" {
		message = printableHost(host) + " is down for maintenance"
	}
	w.Header().Set("Retry-After", maintenanceRetryAfter)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, message, http.StatusServiceUnavailable)
}

func writeBadGateway(w http.ResponseWriter, host string) {
	http.Error(w, "the app serving "+printableHost(host)+" did not answer", http.StatusBadGateway)
}

func writeBadBody(w http.ResponseWriter) {
	http.Error(w, "the request body is malformed or cut short", http.StatusBadRequest)
}

func writeBodyTooSlow(w http.ResponseWriter) {
	http.Error(w, "the request body came too slowly", http.StatusRequestTimeout)
}

func printableHost(host string) string {
	if host == "" {
		return "(no host)"
	}
	return host
}
