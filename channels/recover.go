package channels

import (
	"context"
	"fmt"
	"strconv"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// Recover brings the daemon back to what the store says after a start or a
// crash: operations left running are failed as interrupted, every
// installation's route points at its serving instance again, and instances we
// labelled that no installation serves from are deleted.
func (e *Engine) Recover(ctx context.Context) error {
	ops, err := e.store.InterruptOperations(ctx, "interrupted: slipway stopped while it ran")
	if err != nil {
		return fmt.Errorf("mark interrupted operations: %w", err)
	}
	for _, op := range ops {
		e.logs.append(op.ID, fmt.Sprintf("Operation %d interrupted: slipway stopped while it ran; its new instance, if any, is removed", op.ID))
		e.log.Warn("Operation interrupted", "op", op.ID, "type", op.Type, "resource", op.Resource())
	}
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		return err
	}
	serving, err := e.syncRoutes(ctx, insts)
	if err != nil {
		return err
	}
	instances, err := e.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	var stopped []string // installations whose serving instance is stopped
	for _, in := range instances {
		if serving[in.Name] && !in.Running {
			stopped = append(stopped, in.Labels[LabelInstallation])
		}
		if _, ours := in.Labels[LabelInstallation]; !ours || serving[in.Name] {
			continue
		}
		id, _ := strconv.ParseInt(in.Labels[LabelInstallation], 10, 64)
		e.log.Info("Deleting orphan instance", "instance", in.Name, "installation", id)
		// It may have served until syncRoutes took its host back (a crash
		// right after a swap): let its requests finish first.
		dctx, cancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
		err := e.router.Drain(dctx, in.Name)
		cancel()
		if err != nil {
			e.log.Warn("Drain orphan instance", "instance", in.Name, "err", err)
		}
		if err := e.rt.Delete(ctx, in.Name); err != nil {
			e.log.Warn("Delete orphan instance", "instance", in.Name, "err", err)
		}
	}
	if err := e.store.InterruptCleanups(ctx, "slipway stopped before it ended; old instances were deleted at the next start"); err != nil {
		e.log.Warn("Mark interrupted clean-ups", "err", err)
	}
	if _, err := e.DeleteLeftovers(ctx); err != nil {
		e.log.Warn("Delete leftover instances", "err", err)
	}
	e.recoverDatabases(ctx) // before the apps that use them
	e.restartStopped(ctx, append(stopped, missingInstances(insts, instances)...))
	e.startCollector()
	e.startHealer()
	return nil
}

// missingInstances returns the installations whose serving instance is gone:
// deleted by hand, or never on this host (a system backup restored onto a
// new one; see sysarchive). A restart makes it again from the commit the
// installation serves, as for a stopped one.
func missingInstances(insts []store.Installation, instances []runtime.Instance) []string {
	present := map[string]bool{}
	for _, in := range instances {
		present[in.Name] = true
	}
	var missing []string
	for _, inst := range insts {
		if inst.Instance != "" && inst.Commit != "" && !present[inst.Instance] {
			missing = append(missing, strconv.FormatInt(inst.ID, 10))
		}
	}
	return missing
}

// restartStopped restarts the installations whose serving instance was found
// stopped (after a host reboot) or missing. The supervisor in an instance keeps the
// app's processes and environment in memory only (it holds secrets), so a
// stopped instance cannot simply be started again: a restart operation makes
// a fresh one of the same commit, from its kept image when there is one.
func (e *Engine) restartStopped(ctx context.Context, installations []string) {
	for _, idText := range installations {
		id, _ := strconv.ParseInt(idText, 10, 64)
		inst, err := e.store.InstallationByID(ctx, id)
		if err != nil {
			continue
		}
		e.log.Info("Restarting installation whose instance is stopped or missing", "installation", inst.Resource(), "instance", inst.Instance)
		if _, err := e.Restart(ctx, inst.App, inst.Environment, "slipway"); err != nil {
			e.log.Warn("Restart installation", "installation", inst.Resource(), "err", err)
		}
	}
}
