// Package clustertest forms a real Incus cluster of several members on one
// host, for tests, the way Incus's own test suite does
// (test/includes/clustering.sh): one incusd per member, each with its own
// INCUS_DIR and its own network, mount and PID namespaces, the members joined
// by veth pairs to a bridge in a "switch" network namespace. Nothing of it is
// on the host's network: the bridge and the members' addresses exist only in
// namespaces the harness made, and the host's incusd is never spoken to.
package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// The members' network exists only inside the namespaces the harness makes:
// member i (from 0) has 10.77.0.(11+i).
const (
	subnetPrefix = "10.77.0."
	subnetBits   = 24
	port         = 8443
	// OfflineThreshold is the cluster.offline_threshold the harness sets, in
	// seconds: Incus's minimum is 11 (it must exceed 10).
	OfflineThreshold = 11
)

// Member is one incusd of the cluster.
type Member struct {
	Name    string // cluster member name: m1, m2, ...
	Address string // cluster address, host:port, inside the test namespaces
	Socket  string // unix socket of its API, reachable from the host
	PID     int    // incusd's PID in the host's PID namespace
	NetNS   string // path of its network namespace (for setns or nsenter --net)
	Dir     string // its INCUS_DIR

	holder *holder
	killed bool
}

// Cluster is a running cluster; Start forms it.
type Cluster struct {
	Members []Member
	Dir     string // holds every member's INCUS_DIR and the harness's logs
	// Formed is how long forming took, from nothing to every member online.
	Formed time.Duration

	t      testing.TB
	sw     *holder // the switch namespace
	mu     sync.Mutex
	closed bool
	dumped bool
	// cgroups are the harness's cgroup trees, one per hierarchy.
	cgroups []string
}

// incusd finds the daemon's binary: distributions keep it off PATH.
func incusd() string {
	for _, p := range []string{"/usr/libexec/incus/incusd", "/usr/lib/incus/incusd", "/opt/incus/bin/incusd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("incusd"); err == nil {
		return p
	}
	return ""
}

// skip skips the test, unless under CI where a missing prerequisite is a
// broken runner rather than a developer's laptop.
func skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("clustertest: "+format+" (CI=true, so this fails rather than skips)", args...)
	}
	t.Skipf("clustertest: "+format, args...)
}

// Start forms a cluster of the given number of members and registers its
// teardown with t.Cleanup.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root (namespaces, mounts, veths)")
	}
	bin := incusd()
	if bin == "" {
		skip(t, "incusd not found (/usr/libexec/incus/incusd or PATH)")
	}
	for _, tool := range []string{"incus", "nsenter", "ip", "mount", "umount", "mountpoint"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, "%s not found on PATH", tool)
		}
	}
	if members < 1 || members > 200 {
		t.Fatalf("clustertest: %d members (1 to 200)", members)
	}
	// A short path: unix sockets under INCUS_DIR must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "slwc-")
	if err != nil {
		t.Fatal(err)
	}
	// Containers' init runs as root in their own user namespace and must
	// get through this directory to its rootfs: MkdirTemp makes it 0700.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, t: t}
	t.Cleanup(c.Close)
	if gone := sweep(); len(gone) > 0 {
		t.Logf("clustertest: removed what dead test runs left: %v", gone)
	}
	cg, err := cgroupDirs()
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	for _, d := range cg {
		c.cgroups = append(c.cgroups, filepath.Join(d, filepath.Base(dir)))
	}
	if err := writeOwner(dir, c.cgroups); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := c.form(bin, members); err != nil {
		c.dumpLogs()
		t.Fatalf("clustertest: forming a cluster of %d: %v", members, err)
	}
	c.Formed = time.Since(began)
	return c
}

func (c *Cluster) form(bin string, n int) error {
	swLog, err := os.Create(filepath.Join(c.Dir, "switch.log"))
	if err != nil {
		return err
	}
	defer swLog.Close()
	// The switch: a network namespace holding only a bridge. No address on
	// it: the members speak to each other across it, nothing routes out.
	c.sw, err = startHolder(`set -e
ip link set lo up
ip link add br0 type bridge
ip link set br0 up
echo ready
exec sleep infinity`, syscall.CLONE_NEWNET, nil, swLog)
	if err != nil {
		return fmt.Errorf("switch namespace: %w", err)
	}

	c.Members = make([]Member, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// Members start in parallel: each incusd takes a few seconds to be ready.
	for i := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.spawn(i, bin)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := c.bootstrap(); err != nil {
		return fmt.Errorf("bootstrap %s: %w", c.Members[0].Name, err)
	}
	// Joins go one at a time, as Incus wants: each changes the raft
	// configuration the next one joins.
	for i := 1; i < n; i++ {
		if err := c.join(i); err != nil {
			return fmt.Errorf("join %s: %w", c.Members[i].Name, err)
		}
	}
	return c.WaitOnline(time.Minute)
}

// memberScript sets up the member's mount namespace, then waits for the
// harness to wire its network before starting incusd.
//
// Mounts: the namespace starts as a copy of the host's; making it private
// keeps everything below from reaching the host. /sys is mounted afresh so
// it shows this network namespace's interfaces (incusd reads
// /sys/class/net), keeping the host's cgroup tree; /proc afresh for the PID
// namespace, so incusd's own PIDs make sense in it.
const memberScript = `set -e
mount --make-rprivate /
mkdir -p "$OLDSYS"
mount --move /sys "$OLDSYS"
mount -t sysfs sysfs /sys
if mountpoint -q "$OLDSYS/fs/cgroup"; then mount --move "$OLDSYS/fs/cgroup" /sys/fs/cgroup; fi
if mountpoint -q "$OLDSYS/kernel/security"; then mount -t securityfs securityfs /sys/kernel/security || true; fi
umount -l "$OLDSYS"
mount -t proc proc /proc
ip link set lo up
echo ready
read -r _
"$INCUSD" --logfile "$INCUS_DIR/incus.log" >"$INCUS_DIR/incusd.out" 2>&1 </dev/null &
echo started
wait
`

func (c *Cluster) spawn(i int, bin string) error {
	m := &c.Members[i]
	m.Name = fmt.Sprintf("m%d", i+1)
	m.Dir = filepath.Join(c.Dir, m.Name)
	m.Socket = filepath.Join(m.Dir, "unix.socket")
	m.Address = fmt.Sprintf("%s%d:%d", subnetPrefix, 11+i, port)
	if err := os.MkdirAll(m.Dir, 0o711); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(c.Dir, m.Name+".holder.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	h, err := startHolder(memberScript, syscall.CLONE_NEWNS|syscall.CLONE_NEWNET|syscall.CLONE_NEWPID, []string{
		"INCUS_DIR=" + m.Dir,
		"INCUSD=" + bin,
		"OLDSYS=" + filepath.Join(c.Dir, m.Name+".oldsys"),
	}, log)
	if err != nil {
		return fmt.Errorf("%s: namespaces: %w", m.Name, err)
	}
	m.holder = h
	m.NetNS = h.netns()
	// Before incusd starts, so it and its containers inherit the cgroup.
	if err := joinCgroup(filepath.Base(c.Dir)+"/"+m.Name, h.pid()); err != nil {
		return fmt.Errorf("%s: cgroup: %w", m.Name, err)
	}

	// The veth pair is made inside the switch namespace with its peer sent
	// straight into the member's: neither end ever exists on the host.
	veth := "v" + m.Name
	ip := subnetPrefix + fmt.Sprint(11+i)
	for _, step := range []struct {
		ns   string
		args []string
	}{
		{c.sw.netns(), []string{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", fmt.Sprint(h.pid())}},
		{c.sw.netns(), []string{"link", "set", veth, "master", "br0", "up"}},
		{m.NetNS, []string{"addr", "add", fmt.Sprintf("%s/%d", ip, subnetBits), "dev", "eth0"}},
		{m.NetNS, []string{"link", "set", "eth0", "up"}},
	} {
		if err := runIn(step.ns, "ip", step.args...); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}

	if _, err := fmt.Fprintln(h.stdin, "go"); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if err := h.expect("started", 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if m.PID, err = childOf(h.pid(), "incusd", 5*time.Second); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.CLI(ctx, i, nil, "admin", "waitready", "--timeout=55"); err != nil {
		return fmt.Errorf("%s: incusd not ready: %w: %s", m.Name, err, out)
	}
	return nil
}

// CLI runs the incus command line against member i (its INCUS_DIR, a
// client config dir of the harness's own, inside its network namespace so
// the addresses it is given are reachable) and returns its combined output.
func (c *Cluster) CLI(ctx context.Context, i int, stdin []byte, args ...string) (string, error) {
	m := &c.Members[i]
	cmd := NetNSCommand(ctx, m.NetNS, "incus", args...)
	cmd.Env = append(os.Environ(), "INCUS_DIR="+m.Dir, "INCUS_CONF="+filepath.Join(c.Dir, "client"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *Cluster) preseed(i int, yaml string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.CLI(ctx, i, []byte(yaml), "admin", "init", "--preseed")
	if err != nil {
		return fmt.Errorf("incus admin init --preseed: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) bootstrap() error {
	m := c.Members[0]
	// images.auto_update_interval 0: nothing here can reach an image
	// server. The default profile's root disk is on a dir pool in INCUS_DIR.
	if err := c.preseed(0, fmt.Sprintf(`config:
  core.https_address: %s
  cluster.https_address: %s
  images.auto_update_interval: "0"
storage_pools:
- name: data
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: data
      type: disk
cluster:
  server_name: %s
  enabled: true
`, m.Address, m.Address, m.Name)); err != nil {
		return err
	}
	// Only once clustered: incusd 6.0.4 panics (nil heartbeat task) when
	// cluster.offline_threshold is set on a server not yet in a cluster.
	cl, err := c.Client(0)
	if err != nil {
		return err
	}
	defer cl.Disconnect()
	srv, etag, err := cl.GetServer()
	if err != nil {
		return err
	}
	put := srv.Writable()
	put.Config["cluster.offline_threshold"] = fmt.Sprint(OfflineThreshold)
	return cl.UpdateServer(put, etag)
}

func (c *Cluster) join(i int) error {
	boot, err := c.Client(0)
	if err != nil {
		return err
	}
	srv, _, err := boot.GetServer()
	if err != nil {
		return err
	}
	op, err := boot.CreateClusterMember(api.ClusterMembersPost{ServerName: c.Members[i].Name})
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	opAPI := op.Get()
	token, err := opAPI.ToClusterJoinToken()
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	// The pool's source is per member: empty means the default under that
	// member's own INCUS_DIR.
	return c.preseed(i, fmt.Sprintf(`cluster:
  enabled: true
  server_name: %s
  server_address: %s
  cluster_address: %s
  cluster_certificate: %q
  cluster_token: %s
  member_config:
  - entity: storage-pool
    name: data
    key: source
    value: ""
`, c.Members[i].Name, c.Members[i].Address, c.Members[0].Address, srv.Environment.Certificate, token.String()))
}

// Client connects to member i's unix socket.
func (c *Cluster) Client(i int) (incus.InstanceServer, error) {
	return incus.ConnectIncusUnix(c.Members[i].Socket, nil)
}

// alive returns the index of a member that has not been killed.
func (c *Cluster) alive() int {
	for i := range c.Members {
		if !c.Members[i].killed {
			return i
		}
	}
	return -1
}

// WaitOnline waits until every member not killed sees every member not
// killed as online.
func (c *Cluster) WaitOnline(patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		err := c.checkOnline()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *Cluster) checkOnline() error {
	for i := range c.Members {
		if c.Members[i].killed {
			continue
		}
		cl, err := c.Client(i)
		if err != nil {
			return err
		}
		list, err := cl.GetClusterMembers()
		cl.Disconnect()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Members[i].Name, err)
		}
		status := map[string]string{}
		for _, cm := range list {
			status[cm.ServerName] = cm.Status
		}
		for j := range c.Members {
			if c.Members[j].killed {
				continue
			}
			if s := status[c.Members[j].Name]; s != "Online" {
				return fmt.Errorf("%s sees %s as %q", c.Members[i].Name, c.Members[j].Name, s)
			}
		}
	}
	return nil
}

// Kill is what a member going offline looks like: its incusd gets SIGKILL
// and its namespaces go (with its containers, its end of the veth and so
// its port on the bridge). Its INCUS_DIR stays until Close.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kill(i)
}

func (c *Cluster) kill(i int) {
	m := &c.Members[i]
	if m.killed {
		return
	}
	m.killed = true
	var stale []string
	if m.holder != nil {
		stale = lxcCgroups(m.holder.pid(), c.cgroups)
	}
	if m.PID > 0 {
		_ = syscall.Kill(m.PID, syscall.SIGKILL)
	}
	if m.holder != nil {
		m.holder.kill()
	}
	// Containers' cgroups outside the harness's trees (pure cgroup2 only).
	if err := removeCgroups(stale, 10*time.Second); err != nil {
		c.t.Errorf("clustertest: %s: %v", m.Name, err)
	}
}

// ImportImage imports a unified image tarball into the cluster (through the
// first member alive) under alias. Members fetch it from the one that holds
// it when they first need it.
func (c *Cluster) ImportImage(alias, tarball string) error {
	i := c.alive()
	if i < 0 {
		return errors.New("no member alive")
	}
	cl, err := c.Client(i)
	if err != nil {
		return err
	}
	defer cl.Disconnect()
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	op, err := cl.CreateImage(api.ImagesPost{Aliases: []api.ImageAlias{{Name: alias}}},
		&incus.ImageCreateArgs{MetaFile: f, MetaName: filepath.Base(tarball)})
	if err != nil {
		return fmt.Errorf("import %s: %w", tarball, err)
	}
	if err := op.Wait(); err != nil {
		return fmt.Errorf("import %s: %w", tarball, err)
	}
	return nil
}

// dumpLogs puts the tail of every member's incus.log in the test's log, for
// a cluster that would not form.
func (c *Cluster) dumpLogs() {
	c.dumped = true
	for _, m := range c.Members {
		files := []string{filepath.Join(m.Dir, "incus.log"), filepath.Join(c.Dir, m.Name+".holder.log")}
		// What liblxc said about instances that would not start.
		lxc, _ := filepath.Glob(filepath.Join(m.Dir, "logs", "*", "*.log"))
		for _, f := range append(files, lxc...) {
			b, err := os.ReadFile(f)
			if err != nil || len(b) == 0 {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			c.t.Logf("%s:\n%s", f, strings.Join(lines, "\n"))
		}
	}
}

// Close tears everything down: every incusd and its containers (SIGKILL, by
// PID), the namespaces and with them the veths and the bridge, then the
// temporary directory. Start registers it with t.Cleanup; calling it again
// does nothing.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.t.Failed() && !c.dumped {
		c.dumpLogs()
	}
	for i := range c.Members {
		c.kill(i)
	}
	if c.sw != nil {
		c.sw.kill()
	}
	if err := removeCgroups(c.cgroups, 10*time.Second); err != nil {
		c.t.Errorf("clustertest: %v", err)
	}
	if err := removeAppArmor(c.Dir); err != nil {
		c.t.Errorf("clustertest: %v", err)
	}
	// Every mount the members made was in their own, private, mount
	// namespaces, now gone; check none reached the host before removing.
	if mounts := MountsUnder(c.Dir); len(mounts) > 0 {
		c.t.Errorf("clustertest: mounts left under %s: %v", c.Dir, mounts)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		c.t.Errorf("clustertest: %v", err)
	}
}

// MountsUnder lists the host's mount points at or below dir.
func MountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			found = append(found, f[4])
		}
	}
	return found
}

// Command returns a command that runs inside member i's network namespace
// (for a process that must listen on, or reach, the members' addresses).
func (c *Cluster) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return c.Members[i].Command(ctx, name, args...)
}

// SwitchNetNS is the path of the network namespace that holds the bridge.
func (c *Cluster) SwitchNetNS() string { return c.sw.netns() }

// Command returns a command that runs inside the member's network namespace.
func (m Member) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return NetNSCommand(ctx, m.NetNS, name, args...)
}

// Listen opens a listener inside the member's network namespace, e.g. on
// m.IP()+":0", which the other members can reach over the bridge.
func (m Member) Listen(network, addr string) (net.Listener, error) {
	return ListenIn(m.NetNS, network, addr)
}

// Dial connects from inside the member's network namespace.
func (m Member) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialIn(ctx, m.NetNS, network, addr)
}

// IP is the member's address without its port.
func (m Member) IP() string {
	host, _, _ := strings.Cut(m.Address, ":")
	return host
}
