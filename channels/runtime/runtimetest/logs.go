package runtimetest

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/channels/runtime"
)

// Print makes process of instance name print line, as its supervisor would
// report it to FollowLogs.
func (f *Runtime) Print(name, process, line string) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	in := f.instances[name]
	if in == nil {
		return fmt.Errorf("no instance %s", name)
	}
	in.lines = append(in.lines, runtime.LogLine{Time: time.Now(), Process: process, Stream: "stdout",
		Line: line, Boot: name + "-boot", Seq: uint64(len(in.lines) + 1)})
	return nil
}

// FollowLogs hands fn the lines printed after seq (all of them for another
// boot), then the new ones, until the instance is deleted or ctx ends.
func (f *Runtime) FollowLogs(ctx context.Context, name, boot string, seq uint64, fn func(runtime.LogLine) error) error {
	for {
		f.Mu.Lock()
		in := f.instances[name]
		var todo []runtime.LogLine
		if in != nil {
			for _, l := range in.lines {
				if l.Boot != boot || l.Seq > seq {
					todo = append(todo, l)
				}
			}
		}
		f.Mu.Unlock()
		if in == nil {
			return nil
		}
		for _, l := range todo {
			if err := fn(l); err != nil {
				return err
			}
			boot, seq = l.Boot, l.Seq
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
