package hooks

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// helpTopics groups the commands for help, everyday ones first.
var helpTopics = []struct {
	title    string
	commands []string
}{
	{"Apps and installations", []string{"app create", "app delete", "env create", "env delete", "install", "status", "deprovision"}},
	{"Deploys and rollback", []string{"history", "track", "pin", "restart", "rebuild"}},
	{"Instances and scale", []string{"ps", "scale"}},
	{"Operations", []string{"ops", "logs", "cancel", "run"}},
	{"Configuration", []string{"config", "config set", "config unset", "limits", "maintenance"}},
	{"Domains and HTTPS", []string{"domains list", "domains add", "domains remove", "https", "certs list", "certs set", "certs renew"}},
	{"Databases", []string{"db create", "db list", "db info", "db reload", "db deprovision", "db attach", "db detach", "db psql", "db backup", "db schedule", "db purge", "db backups", "db verify", "db restore"}},
	{"Backups", []string{"backup now", "backup list", "backup verify", "backup schedule", "backup purge", "backup copy", "restore"}},
	{"People and access", []string{"login", "users", "user add", "user remove", "key add", "key list", "key remove", "grant", "revoke", "access"}},
	{"Reports", []string{"report list", "report get", "report make"}},
	{"This server", []string{"help", "version"}},
}

// helpWidth is the widest line help writes.
const helpWidth = 100

// writeWrapped writes text after indent, wrapped at word boundaries so no
// line is wider than helpWidth; lines after the first are indented two more.
func writeWrapped(w io.Writer, indent, text string) {
	writeHanging(w, indent, indent+"  ", text)
}

// writeHanging writes text after first, and its wrapped lines after rest.
func writeHanging(w io.Writer, first, rest, text string) {
	line, start := first, first
	for _, word := range wrapUnits(text) {
		if len(line) > len(start) && len(line)+1+len(word) > helpWidth {
			fmt.Fprintln(w, line)
			line, start = rest, rest
		}
		if len(line) > len(start) {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}

// wrapUnits are text's words, a bracketed group ([--limit N]) kept as one.
func wrapUnits(text string) []string {
	var units []string
	open := 0
	for _, w := range strings.Fields(text) {
		if open > 0 {
			units[len(units)-1] += " " + w
		} else {
			units = append(units, w)
		}
		open += strings.Count(w, "[") - strings.Count(w, "]")
		open = max(open, 0)
	}
	return units
}

// writeUsageLine writes "usage: " and the command's usage, its wrapped
// lines under the command's first word.
func writeUsageLine(w io.Writer, cmd command) {
	writeHanging(w, "usage: ", "         ", cmd.usage)
}

// writeUsage is what help COMMAND and COMMAND --help print.
func writeUsage(w io.Writer, cmd command) {
	writeUsageLine(w, cmd)
	writeWrapped(w, "  ", cmd.help)
}

// wantsHelp reports whether a command's arguments ask for its usage. After
// "--" the words are another program's (run APP/ENV -- CMD --help).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--help", "-help", "-h":
			return true
		}
	}
	return false
}

var (
	unknownFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	badValue    = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]*):`)
	needsValue  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// FlagMessage says in slipway's words what the flag package found wrong
// (unknown flag --jsn, --limit "x": not a number), for the slipway binary's
// own flags too.
func FlagMessage(fs *flag.FlagSet, err error) string { return flagMessage(fs, err) }

// flagMessage says in slipway's words what the flag package found wrong.
func flagMessage(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		return "unknown flag " + flagName(m[1])
	}
	if m := badValue.FindStringSubmatch(msg); m != nil {
		want := "not a value it takes"
		if f := fs.Lookup(m[2]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case int, int64, uint, uint64:
					want = "not a number"
				case bool:
					want = "not true or false"
				case time.Duration:
					want = "not a duration such as 30s"
				}
			}
		}
		return fmt.Sprintf("%s %q: %s", flagName(m[2]), m[1], want)
	}
	if m := needsValue.FindStringSubmatch(msg); m != nil {
		return flagName(m[1]) + " needs a value"
	}
	return msg
}

// flagName is how help writes a flag: -f, --json.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// checkNoFlags is the flag check of a command that takes no flags: a word
// before "--" that looks like one is a usage error, not an argument.
func checkNoFlags(usage string, args []string) error {
	if strings.Contains(" "+usage, " -") || strings.Contains(usage, "[-") {
		return nil // the command parses its own flags
	}
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if len(a) > 1 && a[0] == '-' {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			return usageError("unknown flag " + flagName(name))
		}
	}
	return nil
}
