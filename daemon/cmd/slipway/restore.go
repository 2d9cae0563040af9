package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/daemon"
)

// restoreSystem is `slipway restore-system ARCHIVE --data DIR`: a system
// backup made on a lost host, put into the data directory of a new one.
func restoreSystem(args []string) int {
	fs := flag.NewFlagSet("restore-system", flag.ContinueOnError)
	data := daemon.Defaults().DataDir
	ef := &envFlags{fs: fs}
	ef.str(&data, "data", "the new data directory; it must not hold a store yet")
	// ARCHIVE may come before or after --data.
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) > 0 {
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if ef.err != nil {
		fmt.Fprintf(os.Stderr, "slipway restore-system: %s\n", ef.err)
		return 2
	}
	if len(rest) != 1 {
		fmt.Fprintln(os.Stderr, "usage: slipway restore-system ARCHIVE --data DIR")
		return 2
	}
	r, err := sysarchive.Restore(context.Background(), rest[0], data, daemon.SystemLayout())
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway restore-system: %s\n", err)
		return 1
	}
	r.Write(os.Stdout)
	return 0
}
