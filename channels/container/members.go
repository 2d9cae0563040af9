package container

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// On an Incus cluster an instance may run on another member, whose kernel
// holds its root and network namespace: the runtime reaches it through the
// slipway agent of that member (package agent) instead of this host's
// /proc. Off a cluster every instance is local and none of this is used.

// Relay reaches the instances of one other member (an agent.Client).
type Relay interface {
	DialSupervisor(ctx context.Context, name string) (net.Conn, error)
	Dial(ctx context.Context, name string, port int) (net.Conn, error)
}

// Members says which cluster member this host is and how to reach the
// instances of the others.
type Members struct {
	Local  string           // this host's member name, as Incus gives an instance's location
	Relays map[string]Relay // by member name
}

type placement struct {
	mu      sync.Mutex
	members *Members          // nil: every instance is local
	where   map[string]string // instance name -> its location, as last seen
	pending map[string]int    // "installation/member" -> launches under way there

	rediscover func()    // lists the members again (JoinCluster's), or nil
	discovered time.Time // when it last did
}

// rediscoverEvery bounds how often an unknown member makes the runtime list
// the cluster's members again.
const rediscoverEvery = 10 * time.Second

// maybeRediscover lists the members again, when a member the runtime does
// not know appears (it joined after the start), at most every
// rediscoverEvery. The caller must not hold c.place.mu.
func (c *Incus) maybeRediscover() {
	c.place.mu.Lock()
	again := c.place.rediscover
	if again == nil || time.Since(c.place.discovered) < rediscoverEvery {
		c.place.mu.Unlock()
		return
	}
	c.place.discovered = time.Now()
	c.place.mu.Unlock()
	again()
}

// SetMembers has the runtime reach instances located on other members than
// m.Local through m.Relays.
func (c *Incus) SetMembers(m Members) {
	c.place.mu.Lock()
	defer c.place.mu.Unlock()
	c.place.members = &m
	if c.place.where == nil {
		c.place.where = map[string]string{}
	}
}

// relayFor returns the relay that reaches name, or nil when name is on this
// host.
func (c *Incus) relayFor(name string) (Relay, error) {
	c.place.mu.Lock()
	m := c.place.members
	loc, known := c.place.where[name]
	c.place.mu.Unlock()
	if m == nil {
		return nil, nil
	}
	if !known {
		inst, _, err := c.srv.GetInstance(name)
		if err != nil {
			return nil, wrap(err, "locate %s", name)
		}
		loc = location(inst.Location)
		c.place.mu.Lock()
		c.place.where[name] = loc
		c.place.mu.Unlock()
	}
	if loc == m.Local {
		return nil, nil
	}
	r := m.Relays[loc]
	if r == nil {
		c.maybeRediscover()
		c.place.mu.Lock()
		r = c.place.members.Relays[loc]
		c.place.mu.Unlock()
	}
	if r == nil {
		return nil, fmt.Errorf("instance %s runs on member %q, which has no slipway agent this host knows", name, loc)
	}
	return r, nil
}

// forget drops what was seen of name's location (it was deleted).
func (c *Incus) forgetPlace(name string) {
	c.place.mu.Lock()
	delete(c.place.where, name)
	c.place.mu.Unlock()
}

// DialSupervisor connects to the instance's supervisor, wherever it runs;
// an agent serves it to the other members.
func (c *Incus) DialSupervisor(ctx context.Context, name string) (net.Conn, error) {
	return c.dialSupervisor(ctx, name)
}

// JoinCluster, when the incusd is a cluster member, makes the runtime reach
// the instances of the other members through their agents, at port agentPort
// of each member's cluster address; relay makes the client of one. It
// reports whether Incus is a cluster.
func (c *Incus) JoinCluster(agentPort int, relay func(member, addr string) Relay) (bool, error) {
	server, _, err := c.srv.GetServer()
	if err != nil {
		return false, wrap(err, "ask incusd about itself")
	}
	if !server.Environment.ServerClustered {
		return false, nil
	}
	list, err := c.srv.GetClusterMembers()
	if err != nil {
		return true, wrap(err, "list the cluster's members")
	}
	m := Members{Local: server.Environment.ServerName, Relays: map[string]Relay{}}
	if !localIncusd(server.Environment.ServerPid) {
		m.Local = "" // reached over HTTPS from outside the cluster: every member is another
	}
	for _, member := range list {
		if member.ServerName == m.Local {
			continue
		}
		u, err := url.Parse(member.URL)
		if err != nil || u.Hostname() == "" {
			return true, fmt.Errorf("member %s has no address slipway can read (%q)", member.ServerName, member.URL)
		}
		m.Relays[member.ServerName] = relay(member.ServerName, net.JoinHostPort(u.Hostname(), strconv.Itoa(agentPort)))
	}
	c.SetMembers(m)
	c.place.mu.Lock()
	first := c.place.rediscover == nil
	c.place.rediscover = func() { c.JoinCluster(agentPort, relay) }
	c.place.discovered = time.Now()
	c.place.mu.Unlock()
	if first {
		c.log.Info("Incus is a cluster: instances on other members are reached through their slipway agent",
			"member", m.Local, "others", len(m.Relays), "agent_port", agentPort)
	}
	return true, nil
}

// Clustered reports whether the incusd is a member of a cluster.
func (c *Incus) Clustered() (bool, error) {
	server, _, err := c.srv.GetServer()
	if err != nil {
		return false, wrap(err, "ask incusd about itself")
	}
	return server.Environment.ServerClustered, nil
}

// LabelMember, on a launch, places the instance on that cluster member (the
// one holding its installation's volumes); Incus's scheduler places the rest.
const LabelMember = "member"

// onMember is the server to create an instance with: targeted at member on
// a cluster, as it is otherwise.
func (c *Incus) onMember(member string) incus.InstanceServer {
	c.place.mu.Lock()
	clustered := c.place.members != nil
	c.place.mu.Unlock()
	if member == "" || !clustered {
		return c.srv
	}
	return c.srv.UseTarget(member)
}

// VolumeHome returns the cluster member holding the first of volumes that
// exists ("" off a cluster, or when none exists yet): Incus's local volumes
// are bound to one member, and an instance mounts them only there.
func (c *Incus) VolumeHome(ctx context.Context, volumes []string) (string, error) {
	pool, err := c.VolumePool()
	if err != nil {
		return "", err
	}
	// The list comes from the cluster's database: it answers even when the
	// member holding a volume is offline.
	all, err := c.srv.GetStoragePoolVolumes(pool)
	if err != nil {
		return "", wrap(err, "list the volumes of pool %s", pool)
	}
	for _, v := range volumes {
		for _, vol := range all {
			if vol.Type == "custom" && vol.Name == v {
				return location(vol.Location), nil
			}
		}
	}
	return "", nil
}

// CreateVolumeNear makes a volume on the member where instance runs (a
// first deploy: the volume goes where its first instance is).
func (c *Incus) CreateVolumeNear(ctx context.Context, name, instance string) error {
	c.place.mu.Lock()
	clustered := c.place.members != nil
	c.place.mu.Unlock()
	if !clustered {
		return c.CreateVolume(ctx, name)
	}
	inst, _, err := c.srv.GetInstance(instance)
	if err != nil {
		return wrap(err, "locate %s", instance)
	}
	return c.createVolumeOn(ctx, c.srv.UseTarget(inst.Location), name)
}

// pinger is a relay that can tell whether its member is up (agent.Client).
type pinger interface {
	Ping(ctx context.Context) error
}

// answersWithin bounds the look at a member's agent before placing there.
const answersWithin = 500 * time.Millisecond

// answers reports whether member can take an instance as far as its agent
// tells: Incus calls a member gone only after its offline threshold (10 s
// at least), and a launch placed there meanwhile fails. The caller holds
// c.place.mu.
func (c *Incus) answers(member string) bool {
	if c.place.members == nil || member == c.place.members.Local {
		return true
	}
	r := c.place.members.Relays[member]
	if r == nil {
		return false // joined after the members were listed: not until it is known
	}
	p, ok := r.(pinger)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), answersWithin)
	defer cancel()
	return p.Ping(ctx) == nil
}

// spread picks the online member with the fewest instances of the
// installation, counting the launches under way (then the one with the
// fewest instances), so an installation's instances (and its traffic)
// survive the loss of one member. It returns ""
// off a cluster, and done to call once the launch has ended.
func (c *Incus) spread(installation string) (member string, done func()) {
	c.place.mu.Lock()
	clustered := c.place.members != nil
	c.place.mu.Unlock()
	if !clustered || installation == "" {
		return "", func() {}
	}
	list, err := c.srv.GetClusterMembers()
	if err != nil {
		return "", func() {} // Incus's scheduler places it
	}
	if c.unknownAmong(list) {
		c.maybeRediscover()
	}
	all, err := c.srv.GetInstances(api.InstanceTypeAny)
	if err != nil {
		return "", func() {}
	}
	counts, load := map[string]int{}, map[string]int{}
	for _, inst := range all {
		load[inst.Location]++
		if inst.Config[LabelPrefix+"installation"] == installation {
			counts[inst.Location]++
		}
	}
	c.place.mu.Lock()
	defer c.place.mu.Unlock()
	if c.place.pending == nil {
		c.place.pending = map[string]int{}
	}
	best := ""
	for _, m := range list {
		if m.Status != "Online" || !c.answers(m.ServerName) {
			continue
		}
		n := counts[m.ServerName] + c.place.pending[installation+"/"+m.ServerName]
		bestN := counts[best] + c.place.pending[installation+"/"+best]
		// The fewest of this installation first; among those, the member
		// with the fewest instances of the project.
		if best == "" || n < bestN || n == bestN && load[m.ServerName] < load[best] {
			best = m.ServerName
		}
	}
	if best == "" {
		return "", func() {}
	}
	key := installation + "/" + best
	c.place.pending[key]++
	return best, func() {
		c.place.mu.Lock()
		c.place.pending[key]--
		c.place.mu.Unlock()
	}
}

// MemberOnline reports whether Incus counts member as online ("" off a
// cluster: this host, always).
func (c *Incus) MemberOnline(member string) (bool, error) {
	if member == "" {
		return true, nil
	}
	m, _, err := c.srv.GetClusterMember(member)
	if err != nil {
		return false, wrap(err, "look up member %s", member)
	}
	return m.Status == "Online", nil
}

// unknownAmong reports whether a member of list has no relay yet.
func (c *Incus) unknownAmong(list []api.ClusterMember) bool {
	c.place.mu.Lock()
	defer c.place.mu.Unlock()
	for _, m := range list {
		if c.place.members != nil && m.ServerName != c.place.members.Local && c.place.members.Relays[m.ServerName] == nil {
			return true
		}
	}
	return false
}
