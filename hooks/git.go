package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gliderlabs/ssh"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// push is one git receive-pack in progress; the git hooks it runs find it by ID.
type push struct {
	id     string
	app    string
	user   store.User
	mu     sync.Mutex
	failed bool
}

// serveGit runs C git's receive-pack or upload-pack for an app repository.
// C git, not go-git, receives packs: it indexes a large first push several
// times faster, checks each ref's old value under its own lock, and runs the
// hooks through which slipway streams deploy logs back to the pusher.
func (s *Server) serveGit(sess ssh.Session, user store.User, service string, args []string) int {
	stderr := sess.Stderr()
	if len(args) != 1 {
		fmt.Fprintf(stderr, "slipway: %s needs exactly one repository path\n", service)
		return 1
	}
	app := strings.TrimSuffix(strings.Trim(args[0], "/"), ".git")
	if err := channels.CheckName("app", app); err != nil {
		fmt.Fprintf(stderr, "slipway: bad repository path %q: %s\n", args[0], userMessage(err))
		return 1
	}
	ctx := sess.Context()
	if _, err := s.store.AppByName(ctx, app); err != nil {
		fmt.Fprintf(stderr, "slipway: unknown app %q; create it first: ssh ... app create %s\n", app, app)
		return 1
	}
	if !s.canSeeApp(ctx, user, app) {
		fmt.Fprintf(stderr, "slipway: unknown app %q; create it first: ssh ... app create %s\n", app, app)
		return 1
	}
	if service == "git-receive-pack" && !s.canPushApp(ctx, user, app) {
		fmt.Fprintf(stderr, "slipway: you may not push to %s: you need the deployer role in one of its environments\n", app)
		return 1
	}
	dir := filepath.Join(s.cfg.ReposDir, app+".git")
	gitArgs := []string{"-c", "core.hooksPath=" + s.hooksDir()}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.cfg.DataDir, "GIT_CONFIG_NOSYSTEM=1"}
	for _, kv := range sess.Environ() {
		if strings.HasPrefix(kv, "GIT_PROTOCOL=") {
			env = append(env, kv)
		}
	}
	var p *push
	if service == "git-receive-pack" {
		gitArgs = append(gitArgs, "-c", "receive.advertisePushOptions=true")
		if s.cfg.MaxPushBytes > 0 {
			gitArgs = append(gitArgs, "-c", "receive.maxInputSize="+strconv.FormatInt(s.cfg.MaxPushBytes, 10))
		}
		p = &push{id: newPushID(), app: app, user: user}
		s.mu.Lock()
		s.pushes[p.id] = p
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.pushes, p.id)
			s.mu.Unlock()
		}()
		env = append(env, "SLIPWAY_PUSH_ID="+p.id, "SLIPWAY_HOOK_SOCKET="+s.hooks.path)
	}
	gitArgs = append(gitArgs, strings.TrimPrefix(service, "git-"), dir)
	cmd := exec.CommandContext(ctx, "git", gitArgs...)
	cmd.Env = env
	cmd.Stdin = sess
	if p != nil {
		// Start the new instances while the pack is still on its way.
		release := func() {}
		var once sync.Once
		cmd.Stdin = newCommandPeeker(sess, func(branches []string) {
			once.Do(func() {
				release = s.engine.Prewarm(ctx, app, branches, func(env string) bool { return s.canDeploy(ctx, user, env) })
			})
		})
		defer func() {
			once.Do(func() {})
			release()
		}()
	}
	cmd.Stdout = sess
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		s.log.Info("git exited", "service", service, "app", app, "user", user.Name, "status", exitErr.ExitCode())
		return exitErr.ExitCode()
	case err != nil:
		fmt.Fprintf(stderr, "slipway: cannot run git: %s\n", err)
		return 1
	}
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.failed {
			// git prints nothing for this: the refs were updated. The SSH exit
			// status is what makes `git push` itself exit non-zero.
			return 1
		}
	}
	return 0
}

func newPushID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) hooksDir() string { return filepath.Join(s.cfg.DataDir, "git-hooks") }

// writeGitHooks writes the hook scripts git receive-pack runs. They call back
// into this daemon through the hook socket; outside a slipway push (no
// SLIPWAY_PUSH_ID) they do nothing.
func (s *Server) writeGitHooks() error {
	dir := s.hooksDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"pre-receive", "post-receive"} {
		script := fmt.Sprintf("#!/bin/sh\n[ -n \"$SLIPWAY_PUSH_ID\" ] || exit 0\nexec %s hook %s\n", shellQuote(s.cfg.Binary), name)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			return fmt.Errorf("write git hook %s: %w", name, err)
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// hookRequest is what a git hook sends over the hook socket.
type hookRequest struct {
	PushID      string               `json:"push_id"`
	Hook        string               `json:"hook"`
	Updates     []channels.RefUpdate `json:"updates"`
	PushOptions []string             `json:"push_options"`
}

// serveHook answers one git hook of a push in progress: post-receive queues
// the deploys and streams their logs; pre-receive may refuse updates.
func (s *Server) serveHook(ctx context.Context, req hookRequest, out io.Writer) int {
	s.mu.Lock()
	p := s.pushes[req.PushID]
	s.mu.Unlock()
	if p == nil {
		fmt.Fprintln(out, "slipway: this push is not known to the daemon")
		return 1
	}
	switch req.Hook {
	case "pre-receive":
		return s.preReceive(ctx, p, req, out)
	case "post-receive":
		ok := s.postReceive(ctx, p, req, out)
		if !ok {
			p.mu.Lock()
			p.failed = true
			p.mu.Unlock()
		}
		return 0
	}
	return 0
}

// preReceive refuses moving a branch that installations follow unless the
// pusher may deploy to all of them, and deleting or rewriting one unless it
// also says -o force-deploy. Nothing is stored when it refuses.
func (s *Server) preReceive(ctx context.Context, p *push, req hookRequest, out io.Writer) int {
	force := false
	for _, o := range req.PushOptions {
		force = force || o == "force-deploy"
	}
	refused, err := s.engine.RefusedUpdates(ctx, p.app, req.Updates, force, func(env string, a channels.Action) bool {
		return s.engine.Can(ctx, p.user, env, a)
	})
	if err != nil {
		fmt.Fprintf(out, "slipway: cannot check this push: %s\n", err)
		return 1
	}
	for _, r := range refused {
		fmt.Fprintf(out, "slipway: %s\n", r)
	}
	if len(refused) > 0 {
		return 1
	}
	return 0
}

// postReceive queues deploys for the pushed branches and streams each one's
// log until it ends. It reports whether every deploy succeeded.
func (s *Server) postReceive(ctx context.Context, p *push, req hookRequest, out io.Writer) bool {
	ops, skipped, err := s.engine.Pushed(ctx, p.app, p.user.Name, req.Updates, func(env string) bool {
		return s.canDeploy(ctx, p.user, env)
	})
	// Installations the pusher may not deploy to are skipped; those it may not
	// even see are skipped without a word, so their existence does not leak.
	visibleSkips := 0
	for _, inst := range skipped {
		if s.canSeeEnv(ctx, p.user, inst.Environment) {
			visibleSkips++
			fmt.Fprintf(out, "slipway: not deploying to %s: you may not deploy to environment %s\n", inst.Resource(), inst.Environment)
		}
	}
	if err != nil {
		fmt.Fprintf(out, "slipway: could not queue deploys: %s\n", err)
		return false
	}
	if len(ops) == 0 {
		for _, u := range req.Updates {
			if b, ok := u.Branch(); ok && !u.Deleted() {
				fmt.Fprintf(out, "slipway: stored %s at %s; no installation of %s follows branch %s, so nothing was deployed\n", b, shortID(u.New), p.app, b)
			}
		}
		return visibleSkips == 0
	}
	ok := visibleSkips == 0
	for _, op := range ops {
		fmt.Fprintf(out, "slipway: operation %d: %s of %s (follow it with: logs %d -f)\n", op.ID, op.Type, op.Resource(), op.ID)
	}
	for _, op := range ops {
		final, err := s.engine.Follow(ctx, op.ID, 0, func(l store.LogLine) error {
			_, err := fmt.Fprintln(out, l.Text)
			return err
		})
		if err != nil {
			// The pusher went away; the operation goes on.
			return false
		}
		if final.Status != store.StatusSucceeded {
			ok = false
			fmt.Fprintf(out, "slipway: %s of %s %s: %s\n", final.Type, final.Resource(), final.Status, final.Reason)
		}
	}
	return ok
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
