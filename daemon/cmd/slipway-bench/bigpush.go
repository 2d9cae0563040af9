package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The large first push: a repository made the same way every time (the Go
// source tree of the Go that builds slipway, plus incompressible blobs from a
// fixed seed, in one commit, packed once) pushed to a new app on slipway, and
// to a new bare repository through C git's receive-pack behind a throwaway
// OpenSSH sshd, interleaved.

const (
	randomBlobs    = 44
	randomBlobSize = 1 << 20
	goSourceTree   = "/usr/local/go/src"
)

// bigPush: item 5.
func (b *bench) bigPush(ctx context.Context) error {
	status("large first push: the repository (Go source tree + %d MiB of random blobs), %d interleaved rounds", randomBlobs*randomBlobSize>>20, b.cfg.Rounds)
	start := time.Now()
	repo, cached, err := b.makeBigRepo(ctx)
	if err != nil {
		return fmt.Errorf("make the large repository: %w", err)
	}
	objects, packMB := repoSize(ctx, repo)
	how := "made in " + time.Since(start).Round(100*time.Millisecond).String()
	if cached {
		how = "made by an earlier run"
	}
	b.log.Printf("large repository %s: %d objects, pack %.1f MB, %s", repo.dir, objects, packMB, how)
	b.results.note("big_push_ratio", "repository: %d objects, %.0f MB pack (Go source tree + %d MiB random)", objects, packMB, randomBlobs*randomBlobSize>>20)

	sshd, err := startSSHD(ctx, filepath.Join(b.tmp, "sshd"), b.d.key+".pub")
	if err != nil {
		return err
	}
	defer sshd.stop()
	if d, err := sshd.timeTrue(ctx, b.d.sshOptions()); err != nil {
		return fmt.Errorf("OpenSSH login: %w", err)
	} else {
		b.log.Printf("OpenSSH sshd pid %d on %s: `ssh true` takes %s", sshd.pid, sshd.addr, d.Round(time.Millisecond))
	}
	bareDir := filepath.Join(b.tmp, "cgit")
	if err := os.MkdirAll(bareDir, 0o755); err != nil {
		return err
	}

	for r := 1; r <= b.cfg.Rounds; r++ {
		var tSlipway, tGit time.Duration
		var rss, gitRSS int64
		var rssCmd string
		order := []string{"slipway", "git"}
		if r%2 == 0 {
			order = []string{"git", "slipway"}
		}
		for _, side := range order {
			switch side {
			case "slipway":
				app := fmt.Sprintf("big%d", r)
				if _, err := b.d.sshCmd(ctx, "app", "create", app); err != nil {
					return err
				}
				resetHWM(b.d.pid)
				s := sampleRSS(b.d.pid)
				d, err := repo.push(ctx, "ssh://git@"+b.d.ssh+"/"+app)
				self, child, cmd := s.result()
				if err != nil {
					return fmt.Errorf("push to slipway: %w", err)
				}
				tSlipway, rss, rssCmd = d, max(self, child), "slipway serve"
				if child > self {
					rssCmd = cmd
				}
				b.log.Printf("round %d: slipway %.3f s; peak RSS daemon %.1f MiB, largest child %.1f MiB (%s)", r, d.Seconds(), mib(self), mib(child), cmd)
			case "git":
				dir := filepath.Join(bareDir, fmt.Sprintf("r%d.git", r))
				if out, err := exec.CommandContext(ctx, "git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
					return fmt.Errorf("git init --bare: %v: %s", err, out)
				}
				s := sampleRSS(sshd.pid)
				d, err := repo.push(ctx, "ssh://root@"+sshd.addr+dir)
				_, child, cmd := s.result()
				os.RemoveAll(dir)
				if err != nil {
					return fmt.Errorf("push to OpenSSH: %w", err)
				}
				tGit, gitRSS = d, child
				b.log.Printf("round %d: C git over OpenSSH %.3f s; peak RSS largest process %.1f MiB (%s)", r, d.Seconds(), mib(child), cmd)
			}
		}
		ratio := tSlipway.Seconds() / tGit.Seconds()
		b.results.add("big_push_ratio", ratio)
		b.results.add("big_push_rss_mb", mib(rss))
		b.results.note("big_push_ratio", "round %d: slipway %.2f s, C git over OpenSSH %.2f s", r, tSlipway.Seconds(), tGit.Seconds())
		b.results.note("big_push_rss_mb", "round %d: slipway's peak %.0f MiB (%s); C git's largest process behind OpenSSH %.0f MiB", r, mib(rss), truncate(rssCmd, 50), mib(gitRSS))
		status("  round %d: slipway %.2f s, C git %.2f s (%.2f×); peak RSS %.0f MiB", r, tSlipway.Seconds(), tGit.Seconds(), ratio, mib(rss))
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// bigRepo is the generated repository and the environment to push it with.
type bigRepo struct {
	dir string
	env []string
}

// makeBigRepo returns the repository, a bare one in .bench/bigrepo.git,
// made on the first run and reused while the Go tree it copies is the same
// version (making it takes most of a minute here: copying, hashing and
// compressing 12k files, then one delta search).
func (b *bench) makeBigRepo(ctx context.Context) (*bigRepo, bool, error) {
	home := filepath.Join(b.tmp, "home")
	os.MkdirAll(home, 0o700)
	cache, err := filepath.Abs(filepath.Join(b.cfg.OutDir, "bigrepo.git"))
	if err != nil {
		return nil, false, err
	}
	r := &bigRepo{dir: cache, env: append(gitEnv(home, "ssh "+strings.Join(b.d.sshOptions(), " ")),
		"GIT_AUTHOR_DATE=2026-11-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T00:00:00Z")}
	version, _ := os.ReadFile(filepath.Join(filepath.Dir(goSourceTree), "VERSION"))
	stamp := fmt.Sprintf("slipway-bench large repository v1: %s + %d×%d random bytes\n", firstLine(string(version)), randomBlobs, randomBlobSize)
	stampPath := filepath.Join(cache, "slipway-bench-stamp")
	if got, err := os.ReadFile(stampPath); err == nil && string(got) == stamp {
		return r, true, nil
	}
	os.RemoveAll(cache)

	work := filepath.Join(b.tmp, "bigrepo-src")
	defer os.RemoveAll(work)
	if err := copyTree(goSourceTree, filepath.Join(work, "go")); err != nil {
		return nil, false, err
	}
	blobs := filepath.Join(work, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, false, err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'l', 'i', 'p', 'w', 'a', 'y'}))
	buf := make([]byte, randomBlobSize)
	for i := range randomBlobs {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(blobs, fmt.Sprintf("blob-%02d.bin", i)), buf, 0o644); err != nil {
			return nil, false, err
		}
	}
	tmpGit := cache + ".tmp"
	os.RemoveAll(tmpGit)
	env := append(r.env[:len(r.env):len(r.env)], "GIT_DIR="+tmpGit, "GIT_WORK_TREE="+work)
	for _, args := range [][]string{
		{"init", "-q", "--bare", "-b", "main", tmpGit},
		// No automatic gc: the first commit of 12k loose objects would
		// start one in the background, competing with the pushes.
		{"config", "gc.auto", "0"},
		{"add", "-A"},
		{"commit", "-q", "-m", "large repository for slipway-bench"},
		// Packed once, as a real repository is, so each push reuses the
		// deltas instead of searching for them again.
		{"repack", "-a", "-d", "-q"},
	} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir, cmd.Env = work, env
		if args[0] == "init" {
			cmd.Env = r.env
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(tmpGit)
			return nil, false, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(tmpGit, "slipway-bench-stamp"), []byte(stamp), 0o644); err != nil {
		return nil, false, err
	}
	if err := os.Rename(tmpGit, cache); err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// copyTree copies regular files, directories and symlinks from src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var countRe = regexp.MustCompile(`(?m)^(in-pack|size-pack): (\d+)`)

// repoSize returns the object count and pack size (MB) of the repository.
func repoSize(ctx context.Context, r *bigRepo) (int, float64) {
	cmd := exec.CommandContext(ctx, "git", "count-objects", "-v")
	cmd.Dir, cmd.Env = r.dir, r.env
	out, _ := cmd.Output()
	var objects int
	var packKiB float64
	for _, m := range countRe.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.Atoi(m[2])
		if m[1] == "in-pack" {
			objects = v
		} else {
			packKiB = float64(v)
		}
	}
	return objects, packKiB * 1024 / 1e6
}

// push pushes main to url and returns how long `git push` took.
func (r *bigRepo) push(ctx context.Context, url string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "git", "push", "-q", url, "main")
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("git push %s: %v: %s", url, err, out.String())
	}
	return d, nil
}

// sshd is a throwaway OpenSSH server on a loopback port with its own config,
// host key and authorized_keys, letting in root with the bench's key only.
// Root's login shell is bash, which reads ~/.bashrc even for `ssh host cmd`
// (Debian builds it so), and root's .bashrc here costs ~0.45 s a
// connection; SetEnv gives the session an empty HOME, so neither bash nor
// git reads any startup or config file, as slipway's own git does not.
type sshd struct {
	cmd     *exec.Cmd
	pid     int
	addr    string
	exited  chan struct{}
	madeRun bool // created /run/sshd, its privilege separation directory
}

func startSSHD(ctx context.Context, dir, authorizedKey string) (*sshd, error) {
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	hostKey := filepath.Join(dir, "host_key")
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	key, err := os.ReadFile(authorizedKey)
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, key, 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	conf := fmt.Sprintf(`# written by slipway-bench
ListenAddress %s
Port %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
SetEnv HOME=%s GIT_CONFIG_NOSYSTEM=1
`, host, port, hostKey, filepath.Join(dir, "sshd.pid"), authorized, home)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s := &sshd{addr: addr, exited: make(chan struct{})}
	if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
		s.madeRun = true
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", confPath)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		s.removeRun()
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	s.pid = s.cmd.Process.Pid
	go func() { s.cmd.Wait(); logf.Close(); close(s.exited) }()
	if err := waitListening(ctx, addr, s.exited); err != nil {
		s.stop()
		log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
		return nil, fmt.Errorf("sshd: %w: %s", err, log)
	}
	return s, nil
}

// timeTrue times `ssh host true`: the fixed cost of one connection.
func (s *sshd) timeTrue(ctx context.Context, opts []string) (time.Duration, error) {
	host, port, _ := strings.Cut(s.addr, ":")
	args := append(append([]string{"-p", port}, opts...), "root@"+host, "true")
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return time.Since(start), nil
}

// stop ends sshd (our child, by its PID) and its sessions.
func (s *sshd) stop() {
	defer s.removeRun()
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.exited
	}
}

func (s *sshd) removeRun() {
	if s.madeRun {
		os.Remove("/run/sshd")
		s.madeRun = false
	}
}
