package store

import "strings"

// Channel is what an installation follows: a branch (every push to it
// deploys) or a commit (pinned: pushes are ignored).
type Channel struct {
	Kind string // ChannelBranch or ChannelCommit
	Ref  string // the branch name or the full commit ID
}

// Branch is the channel that follows branch name.
func Branch(name string) Channel { return Channel{Kind: ChannelBranch, Ref: name} }

// Pinned is the channel pinned to commit.
func Pinned(commit string) Channel { return Channel{Kind: ChannelCommit, Ref: commit} }

// String renders the channel as "branch main" or "commit 1a2b3c…", as
// operations record it.
func (c Channel) String() string { return c.Kind + " " + c.Ref }

// IsBranch reports whether the channel follows a branch.
func (c Channel) IsBranch() bool { return c.Kind == ChannelBranch }

// ParseChannel reads a channel back from its String form.
func ParseChannel(s string) (Channel, bool) {
	kind, ref, ok := strings.Cut(s, " ")
	if !ok || ref == "" || (kind != ChannelBranch && kind != ChannelCommit) {
		return Channel{}, false
	}
	return Channel{Kind: kind, Ref: ref}, true
}
