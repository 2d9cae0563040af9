// Command slipway-supervisor is PID 1 of every slipway instance: slipway
// bind-mounts it at /.slipway/supervisor and Incus runs it as init. See
// package channels/supervisor for what it does and its protocol.
package main

import (
	"os"

	"github.com/slipway-dev/slipway/channels/supervisor"
)

func main() {
	os.Exit(supervisor.Main(os.Args[1:]))
}
