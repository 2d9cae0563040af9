// Package supervisor is slipway's own init for app instances, and the
// daemon's client for it.
//
// slipway bind-mounts one static binary (daemon/cmd/slipway-supervisor) at
// /.slipway/supervisor into every instance and has Incus run it as PID 1
// (raw.lxc "lxc.init.cmd = /.slipway/supervisor"), so an app runs the same
// way on any image: busybox, Debian minbase without an init, or one with
// systemd it never starts.
//
// # As PID 1
//
// It mounts a tmpfs on /run when /run is not a mount point and on /dev/shm
// when that is missing, brings lo up, makes /app and /run/slipway, reaps
// every child, and on SIGPWR (how Incus stops a container), SIGRTMIN+3
// (what liblxc sends instead to an init that blocks it, as Go's threads
// do), SIGTERM or SIGINT stops every process (SIGTERM to its process
// group, the spec's grace, SIGKILL), lets log followers read the records
// of the stop, syncs and exits 0.
//
// # Protocol (the contract between the daemon and the supervisor)
//
// The supervisor listens on /run/slipway/supervisor.sock (mode 0600) inside
// the instance. The daemon reaches it through /proc/<init pid>/root (see
// DialInstance). One request per connection: the client sends a single JSON
// line (at most 1 MiB, newline-terminated), then op-specific data.
// Everything the supervisor sends is JSON lines; a failure is
// {"error":"one-line reason"} and ends the connection.
//
//	{"op":"deliver"} + a tar stream (git archive's layout, relative names)
//	    unpacks into /app, refusing entries that would land outside it
//	    (absolute names, "..", writing through a symlink); hard links and
//	    device nodes are refused too. Reply {"ok":true}.
//
//	{"op":"start","spec":{"processes":[{"name":"web","command":"..."}],
//	 "env":{"PORT":"5000"},"dir":"/app","grace_seconds":10}}
//	    replaces the supervised set: processes missing from the spec or whose
//	    command, env or dir changed are stopped (TERM, grace, KILL) and the new
//	    ones started, each in its own session, under /bin/sh -c when the
//	    instance has /bin/sh (else the command split into words). Environment:
//	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
//	    HOME=/root, then the spec's env. Reply {"ok":true} once every new
//	    process has been exec'd. A process that exits is restarted after 1 s,
//	    2 s, 4 s ... up to 30 s, back to 1 s after a run of 60 s or more;
//	    after 10 restarts without such a run the supervisor gives up and
//	    stops (the instance with it, as its init). The spec lives only in
//	    memory (it holds secrets).
//
//	{"op":"logs","boot":"ID","after":N,"follow":true}
//	    first line {"boot":"ID","oldest":N} (this boot's id and its oldest
//	    retained seq), then records
//	    {"seq":N,"time":"RFC3339Nano","process":"web","stream":"stdout|stderr|event","line":"..."}
//	    with seq > after; all retained ones when boot is not this boot's id.
//	    When records the client asked for are no longer retained, one record
//	    {"process":"slipway","stream":"event"} says how many, with the seq of
//	    the last one dropped. With follow, new records are streamed until the
//	    client closes. Supervisor events (starts, exits, restarts, stops) are
//	    records of process "slipway", stream "event". Lines are cut at 16 KiB;
//	    the ring keeps at most 4 MiB or 20,000 records.
//
//	{"op":"exec","argv":["/bin/sh","-c","..."],"env":{...},"dir":"/app"}
//	    runs argv in its own process group with the same environment rules,
//	    streams {"data":"<base64 bytes>"} lines (stdout and stderr merged, in
//	    order), then {"exit":N} (128+signal when killed by one). When the
//	    client closes the connection first, the process group is killed, so
//	    the client must not half-close.
//
//	{"op":"status"}
//	    {"boot":"ID","processes":[{"name":"web","pid":42,"state":"running|backoff|stopping",
//	     "restarts":3,"started":"RFC3339Nano","last_exit":"status 1"}]}
//
// The client side (DialInstance, Deliver, Start, Exec, Logs, Status) treats
// everything it reads as hostile: every line is bounded, errors are cut to
// one line, and the socket is resolved inside the instance's root so a
// symlink there never points the daemon at a host file.
package supervisor
