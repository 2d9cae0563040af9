package pebbletest

import (
	"net/http"
	"testing"
)

func TestStartServesTheDirectoryUntilStopped(t *testing.T) {
	t.Parallel()
	ca := Start(t, 5002, 5001)
	client := ca.HTTPClient()

	res, err := client.Get(ca.DirectoryURL)
	if err != nil {
		t.Fatalf("directory: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("directory: %s", res.Status)
	}
	if ca.Roots(t) == nil {
		t.Fatal("no roots")
	}

	// The API certificate is trusted only through HTTPClient.
	if res, err := http.Get(ca.DirectoryURL); err == nil {
		res.Body.Close()
		t.Fatal("the default client trusted Pebble's throw-away API certificate")
	}

	ca.Stop()
	if res, err := client.Get(ca.DirectoryURL); err == nil {
		res.Body.Close()
		t.Fatal("the directory still answers after Stop")
	}
	ca.Stop() // twice is fine: t.Cleanup calls it again too
}
