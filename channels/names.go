package channels

import (
	"regexp"
	"strings"
)

// Names of apps and environments end up in Incus instance names (at most 63
// characters: letters, digits, dashes) and host names, so they are kept short
// and DNS-safe.
var nameRule = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)

// CheckName returns a one-line reason when name is not a valid app or environment name.
func CheckName(kind, name string) error {
	switch {
	case name == "":
		return failf(ErrInvalidName, "%s name is empty", kind)
	case len(name) > 30:
		return failf(ErrInvalidName, "%s name is %d characters long; the limit is 30", kind, len(name))
	case strings.ContainsAny(name, "/ \t.") || strings.Contains(name, ".."):
		return failf(ErrInvalidName, "%s name %q may not contain '/', '.', '..' or spaces; use lowercase letters, digits and dashes", kind, name)
	case !nameRule.MatchString(name) || strings.HasSuffix(name, "-"):
		return failf(ErrInvalidName, "%s name %q must start with a lowercase letter and hold only lowercase letters, digits and dashes", kind, name)
	}
	return nil
}

// branchRule follows git check-ref-format loosely: enough to refuse what would
// never be a branch.
var branchRule = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,200}$`)

// CheckBranch returns a one-line reason when branch is not a usable branch name.
func CheckBranch(branch string) error {
	if !branchRule.MatchString(branch) || strings.Contains(branch, "..") || strings.HasPrefix(branch, "/") ||
		strings.HasSuffix(branch, "/") || strings.HasSuffix(branch, ".lock") || strings.HasPrefix(branch, "-") {
		return failf(ErrInvalidName, "%q is not a valid branch name", branch)
	}
	return nil
}

// ParseResource splits "APP/ENV".
func ParseResource(s string) (app, env string, err error) {
	app, env, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", failf(ErrInvalidName, "%q: write the installation as APP/ENV", s)
	}
	if err := CheckName("app", app); err != nil {
		return "", "", err
	}
	if err := CheckName("environment", env); err != nil {
		return "", "", err
	}
	return app, env, nil
}

func shortID(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// processRule is Heroku's rule for Procfile process types.
var processRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// ValidProcessName: name may be a process type (web, worker, ...).
func ValidProcessName(name string) bool { return processRule.MatchString(name) }
