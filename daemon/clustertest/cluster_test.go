package clustertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// netnsInUse returns the network namespaces of the host's processes and
// of its nsfs mounts, as "net:[inode]" (`ip netns list` only knows named
// ones, and the harness names none).
func netnsInUse() map[string]bool {
	seen := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil {
			seen[l] = true
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[3], "net:[") {
				seen[f[3]] = true
			}
		}
	}
	return seen
}

// alive tells whether pid is a process that has not ended (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func ipNetnsList(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Logf("ip netns list: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestClusterForms(t *testing.T) {
	namedBefore := ipNetnsList(t)
	tarball := BusyboxTarball(t)

	var dir string
	var pids []int
	ours := map[string]bool{} // our network namespaces, as net:[inode]
	var cgroups []string
	// A subtest owns the cluster, so its cleanup has run by the time the
	// checks after it look for leftovers.
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, 3)
		dir = c.Dir
		cgroups = c.cgroups
		pids = append(pids, c.sw.pid())
		for _, ns := range []string{c.sw.netns(), c.Members[0].NetNS, c.Members[1].NetNS, c.Members[2].NetNS} {
			l, err := os.Readlink(ns)
			if err != nil {
				t.Fatal(err)
			}
			ours[l] = true
		}
		for _, m := range c.Members {
			pids = append(pids, m.PID, m.holder.pid())
			t.Logf("%s: address %s, PID %d, socket %s, netns %s", m.Name, m.Address, m.PID, m.Socket, m.NetNS)
		}
		t.Logf("cluster of 3 formed in %s", c.Formed.Round(time.Millisecond))

		cl, err := c.Client(0)
		if err != nil {
			t.Fatal(err)
		}
		list, err := cl.GetClusterMembers()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("%d cluster members, want 3", len(list))
		}
		for _, m := range list {
			if m.Status != "Online" {
				t.Errorf("member %s is %s", m.ServerName, m.Status)
			}
			t.Logf("%s: %s, roles %v", m.ServerName, m.Status, m.Roles)
		}

		// The members reach each other across the bridge, and a process in a
		// member's namespace can serve the others.
		l, err := c.Members[0].Listen("tcp", c.Members[0].IP()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			if conn, err := l.Accept(); err == nil {
				_, _ = conn.Write([]byte("hello"))
				conn.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := c.Members[1].Dial(ctx, "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("from m2 to a listener in m1: %v", err)
		}
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(got) != "hello" {
			t.Errorf("from m2 to a listener in m1: %q, %v", got, err)
		}
		// A command run in a member's namespace sees its address.
		out, err := c.Command(ctx, 1, "ip", "-o", "-4", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.Members[1].IP()+"/") {
			t.Errorf("ip addr in m2: %v: %s", err, out)
		}
		// The host has none of their addresses (this sandbox's network
		// answers any TCP dial, so a dial proves nothing).
		if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), subnetPrefix) {
			t.Errorf("the host has an address in %s0/%d:\n%s", subnetPrefix, subnetBits, out)
		}

		began := time.Now()
		if err := c.ImportImage("busybox", tarball); err != nil {
			t.Fatal(err)
		}
		t.Logf("image imported in %s", time.Since(began).Round(time.Millisecond))

		// One container on each member, all at once.
		began = time.Now()
		var wg sync.WaitGroup
		for _, m := range c.Members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "ct-" + m.Name
				on := cl.UseTarget(m.Name)
				op, err := on.CreateInstance(api.InstancesPost{
					Name:   name,
					Type:   api.InstanceTypeContainer,
					Source: api.InstanceSource{Type: "image", Alias: "busybox"},
					InstancePut: api.InstancePut{Config: map[string]string{
						// No network, no init to speak of: sleep keeps it up.
						"raw.lxc": "lxc.init.cmd = /bin/sleep 1000",
					}},
				})
				if err == nil {
					err = op.Wait()
				}
				if err != nil {
					t.Errorf("create %s on %s: %v", name, m.Name, err)
					return
				}
				op, err = cl.UpdateInstanceState(name, api.InstanceStatePut{Action: "start", Timeout: -1}, "")
				if err == nil {
					err = op.Wait()
				}
				if err != nil {
					t.Errorf("start %s on %s: %v", name, m.Name, err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("3 containers launched, one per member, in %s", time.Since(began).Round(time.Millisecond))
		for _, m := range c.Members {
			inst, _, err := cl.GetInstance("ct-" + m.Name)
			if err != nil {
				t.Fatal(err)
			}
			if inst.Location != m.Name || inst.Status != "Running" {
				t.Errorf("%s: on %q, %s; want on %s, Running", inst.Name, inst.Location, inst.Status, m.Name)
			}
		}

		// Kill m3: the others must come to see it offline.
		c.Kill(2)
		killed := time.Now()
		if alive(c.Members[2].PID) {
			t.Errorf("m3's incusd (PID %d) still alive after Kill", c.Members[2].PID)
		}
		// Its namespace went, and with it its veth and its bridge port (the
		// kernel dismantles a dead namespace in the background).
		for {
			out, err := NetNSCommand(context.Background(), c.SwitchNetNS(), "ip", "-o", "link").CombinedOutput()
			if err == nil && !strings.Contains(string(out), "vm3") && strings.Contains(string(out), "vm1") {
				t.Logf("m3's veth gone from the bridge %s after the kill", time.Since(killed).Round(time.Millisecond))
				break
			}
			if time.Since(killed) > 10*time.Second {
				t.Errorf("switch links 10 s after killing m3 (%v):\n%s", err, out)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Nothing answers at its address now (no ARP reply: the dial times out).
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		if conn, err := c.Members[1].Dial(dctx, "tcp", c.Members[2].Address); err == nil {
			conn.Close()
			t.Errorf("m2 still reaches m3 at %s", c.Members[2].Address)
		}
		dcancel()
		for _, i := range []int{0, 1} {
			cli, err := c.Client(i)
			if err != nil {
				t.Fatal(err)
			}
			for {
				m, _, err := cli.GetClusterMember("m3")
				if err == nil && m.Status == "Offline" {
					break
				}
				if time.Since(killed) > 90*time.Second {
					t.Fatalf("%s still sees m3 as %v (%v) 90 s after it was killed", c.Members[i].Name, m, err)
				}
				time.Sleep(250 * time.Millisecond)
			}
			t.Logf("%s sees m3 offline %s after the kill (cluster.offline_threshold %d s)", c.Members[i].Name, time.Since(killed).Round(time.Millisecond), OfflineThreshold)
		}
		// The survivors see each other online again. Not at once if m3 led
		// the database: a new leader must be elected and run a heartbeat
		// round first, and meanwhile a survivor can see itself as offline.
		if err := c.WaitOnline(45 * time.Second); err != nil {
			t.Errorf("m1 and m2 after losing m3: %v", err)
		} else {
			t.Logf("m1 and m2 see each other online %s after the kill", time.Since(killed).Round(time.Millisecond))
		}
		// Its container is still listed, on m3, in whatever state the
		// cluster reports for an instance it cannot reach.
		insts, err := cl.GetInstances(api.InstanceTypeAny)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, inst := range insts {
			if inst.Name == "ct-m3" {
				found = true
				t.Logf("ct-m3 after its member died: on %s, %s", inst.Location, inst.Status)
				if inst.Location != "m3" {
					t.Errorf("ct-m3 moved to %s", inst.Location)
				}
			}
		}
		if !found {
			t.Errorf("ct-m3 no longer listed")
		}
	})

	// Nothing left behind.
	if dir == "" {
		t.SkipNow() // Start skipped (or failed, which the subtest reported)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
	if m := MountsUnder(dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, cg := range cgroups {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left: %v", cg, err)
		}
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("PID %d still alive", pid)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", dir).Output(); len(out) > 0 {
		t.Errorf("processes mentioning %s: %s", dir, out)
	}
	// Namespaces are freed a little after their last process goes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var extra []string
		for ns := range netnsInUse() {
			if ours[ns] {
				extra = append(extra, ns)
			}
		}
		if len(extra) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("network namespaces left: %v", extra)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := ipNetnsList(t); after != namedBefore {
		t.Errorf("ip netns list was %q, now %q", namedBefore, after)
	}
	// The host's incusd is untouched and still answers.
	if out, err := exec.Command("incus", "list", "--all-projects", "--format=csv", "--columns=n").CombinedOutput(); err != nil {
		t.Errorf("host incus list --all-projects: %v: %s", err, out)
	}
}
