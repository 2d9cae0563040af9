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
	if code, done := parseFlags(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) > 0 {
		if code, done := parseFlags(fs, rest[1:]); done {
			return code
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
