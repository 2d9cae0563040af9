package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/daemon/clustertest"
	"github.com/slipway-dev/slipway/daemon/daemontest"
)

// On a three-member Incus cluster made on this host (see clustertest), the
// daemon runs on the first member and a slipway proxy on each: instances
// spread over the members, every member's proxy serves the app, and when a
// member dies the installation serves again from the others.

// memberProcess is a slipway process inside a member's namespaces (network,
// mount and PID: it reaches the member's instances as that host would).
type memberProcess struct {
	cmd    *exec.Cmd
	stderr *daemontest.LogBuffer
	done   chan struct{}
}

func startOnMember(t *testing.T, m clustertest.Member, env []string, ready *string, args ...string) *memberProcess {
	t.Helper()
	nsArgs := append([]string{"--target", fmt.Sprint(m.PID), "--mount", "--pid", "--net", "--", slipwayBin}, args...)
	cmd := exec.Command("nsenter", nsArgs...)
	cmd.Env = append(append(os.Environ(), "INCUS_SOCKET="+m.Socket), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &memberProcess{cmd: cmd, stderr: &daemontest.LogBuffer{}, done: make(chan struct{})}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(p.stderr, sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its group: nsenter and what it started
		<-p.done
		if t.Failed() {
			t.Logf("%s on %s:\n%s", args[0], m.Name, p.stderr.String())
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line := <-lines:
			if strings.Contains(line, *ready) {
				*ready = line
				return p
			}
		case <-p.done:
			t.Fatalf("%s on %s exited:\n%s", args[0], m.Name, p.stderr.String())
		case <-deadline:
			t.Fatalf("%s on %s did not start:\n%s", args[0], m.Name, p.stderr.String())
		}
	}
}

// forward listens on the host's loopback and connects each client to addr
// inside member m's network namespace, so ssh and git on the host reach the
// daemon there.
func forward(t *testing.T, m clustertest.Member, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := m.Dial(context.Background(), "tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// viaMember asks member m's proxy for host's path.
func viaMember(m clustertest.Member, host, path string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return m.Dial(ctx, "tcp", net.JoinHostPort(m.IP(), "8000"))
		},
	}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return strings.TrimSpace(string(body)), nil
}

func TestSlipwayOnACluster(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	c := clustertest.Start(t, 3)
	if err := c.ImportImage("slipway/busybox", clustertest.BusyboxTarball(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	project := "slipway-cluster-" + randomHex(4)
	key := filepath.Join(dir, "admin_key")
	run(t, dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	data := func(i int) string { return filepath.Join(dir, fmt.Sprintf("data-m%d", i+1)) }
	m1 := c.Members[0]
	// The daemon drives the cluster through m1's HTTPS API, with a client
	// certificate the cluster trusts, and no unix socket to fall back on.
	cert, certKey := clientCert(t, dir, "slipway-daemon")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := c.CLI(ctx, 0, nil, "config", "trust", "add-certificate", cert, "--name", "slipway-daemon"); err != nil {
		t.Fatalf("trust the daemon's certificate: %v: %s", err, out)
	}
	overHTTPS := []string{"INCUS_SOCKET=" + filepath.Join(dir, "no-such.socket")}
	ready := "slipway is running"
	startOnMember(t, m1, overHTTPS, &ready, "serve", "--data", data(0), "--incus-project", project, "--admin-key", key+".pub",
		"--incus-url", "https://"+m1.Address, "--incus-cert", cert, "--incus-key", certKey, "--incus-server-cert", filepath.Join(m1.Dir, "cluster.crt"),
		"--ssh-addr", m1.IP()+":2222", "--web-addr", m1.IP()+":8080", "--metrics-addr", "off", "--https-addr", "",
		"--proxy-addr", m1.IP()+":8000", "--agent-addr", m1.IP()+":8444", "--log-level", "debug")
	// The others' proxies, with the cluster's certificate the daemon made.
	for i := 1; i < len(c.Members); i++ {
		m := c.Members[i]
		os.MkdirAll(filepath.Join(data(i), "agent"), 0o700)
		for _, f := range []string{"agent.crt", "agent.key"} {
			copyFile(t, filepath.Join(data(0), "agent", f), filepath.Join(data(i), "agent", f))
		}
		serving := "slipway proxy is serving"
		startOnMember(t, m, nil, &serving, "proxy", "--data", data(i), "--incus-project", project,
			"--proxy-addr", m.IP()+":8000", "--https-addr", "", "--agent-addr", m.IP()+":8444")
	}

	d := &slipwayd{t: t, dir: dir, data: data(0), project: project, key: key,
		addrs: map[string]string{"ssh": forward(t, m1, m1.IP()+":2222")}}
	d.proc = &daemontest.Daemon{Addrs: d.addrs}
	host := d.setupApp("spread")
	w := d.newApp("spread", "static")
	w.commitFile("slipway.yml", whoManifest, "manifest")
	w.commitFile("public/index.html", "spread\n", "first")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	// An installation with a volume, which cannot leave the member that
	// holds it.
	d.setupApp("vault")
	v := d.newApp("vault", "static")
	v.commitFile("slipway.yml", strings.Replace(whoManifest, "image: slipway/busybox\n", "image: slipway/busybox\nvolumes:\n  data: /data\n", 1), "manifest")
	if out, code := v.push("deploy", "main"); code != 0 {
		t.Fatalf("push of vault exited %d:\n%s", code, out)
	}
	d.mustSSH("scale", "spread/production", "web=3")

	ps := d.ps("spread/production")
	members := map[string]string{}
	for _, p := range ps {
		members[p.Name] = p.Member
	}
	t.Logf("instances and their members: %v", members)
	on := map[string]int{}
	for _, m := range members {
		on[m]++
	}
	for _, m := range c.Members {
		if on[m.Name] != 1 {
			t.Fatalf("three instances are not spread one per member: %v", members)
		}
	}
	for _, m := range c.Members {
		eventually(t, 30*time.Second, "every instance answers through "+m.Name+"'s proxy", func() (bool, string) {
			seen := map[string]bool{}
			for range 30 {
				who, err := viaMember(m, host, "/who")
				if err != nil {
					return false, err.Error()
				}
				seen[who] = true
			}
			return len(seen) == 3, fmt.Sprint(seen)
		})
	}

	// The member of vault's instance dies, with one of spread's: spread
	// serves from the others meanwhile and three instances run again on the
	// survivors; vault is reported degraded.
	vault := d.ps("vault/production")
	dead := -1
	for i, m := range c.Members {
		for _, p := range vault {
			if p.State == "serving" && p.Member == m.Name && i > 0 {
				dead = i
			}
		}
	}
	if dead < 0 {
		t.Fatalf("vault runs on the daemon's member or nowhere: %+v\nits operations: %+v", vault, d.ops("--app", "vault"))
	}
	var views []struct {
		VolumesOn string `json:"volumes_on"`
	}
	d.sshJSON(&views, "status", "vault/production", "--json")
	if len(views) != 1 || views[0].VolumesOn != c.Members[dead].Name {
		t.Fatalf("status does not say vault's volumes keep it on %s: %+v", c.Members[dead].Name, views)
	}
	var lost string
	for name, m := range members {
		if m == c.Members[dead].Name {
			lost = name
		}
	}
	stop := make(chan struct{})
	var asked, failed int
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			asked++
			if _, err := viaMember(m1, host, "/"); err != nil {
				failed++
			}
		}
	}()
	start := time.Now()
	c.Kill(dead)
	eventually(t, 120*time.Second, "three serving instances on the two members left", func() (bool, string) {
		var out []psView
		d.sshJSON(&out, "ps", "spread/production", "--json")
		n := 0
		for _, p := range out {
			if p.State == "serving" && p.Member != c.Members[dead].Name && p.Name != lost {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%+v", out)
	})
	healed := time.Since(start).Round(100 * time.Millisecond)
	close(stop)
	<-loaded
	t.Logf("the death of %s healed in %s; %d of %d requests through m1's proxy meanwhile failed", c.Members[dead].Name, healed, failed, asked)
	for i, m := range c.Members {
		if i == dead {
			continue
		}
		if who, err := viaMember(m, host, "/"); err != nil || who != "spread" {
			t.Fatalf("%s's proxy after the death of %s: %q %v", m.Name, c.Members[dead].Name, who, err)
		}
	}
	eventually(t, 60*time.Second, "vault's heal reports it degraded", func() (bool, string) {
		ops := d.ops("--app", "vault", "--limit", "5")
		for _, op := range ops {
			if op.Type == "heal" && op.Status == "failed" && strings.Contains(op.Reason, "is degraded: its volumes") &&
				strings.Contains(op.Reason, c.Members[dead].Name+", which is offline") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", ops)
	})
}
