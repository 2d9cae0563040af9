package hooks

import (
	"fmt"

	"github.com/slipway-dev/slipway/daemon/version"
)

func init() {
	register(command{"version", "the version, commit and build date of the slipway serving here", anyone, (*Server).cmdVersion})
}

func (s *Server) cmdVersion(c *call, args []string) error {
	if len(args) != 0 {
		return usageError("version takes no arguments")
	}
	fmt.Fprintln(c.out, version.Get())
	return nil
}
