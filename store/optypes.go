package store

// OpType is what kind of change an operation is. The names are Aptible's.
type OpType string

// Operation types.
const (
	OpDeploy      OpType = "deploy"      // a push deployed a commit
	OpSwitch      OpType = "switch"      // the channel changed or a commit was pinned: the rollback
	OpRestart     OpType = "restart"     // a fresh instance of the served commit
	OpConfigure   OpType = "configure"   // environment variables changed
	OpMaintenance OpType = "maintenance" // maintenance mode on or off
	OpExecute     OpType = "execute"     // a one-off command in the serving instance
	OpDeprovision OpType = "deprovision" // traffic stopped, instances deleted
	OpBackup      OpType = "backup"      // a volume or store backup, verified
	OpRestore     OpType = "restore"     // a volume restored from a backup
	OpPurge       OpType = "purge"       // backups past retention deleted
	OpReport      OpType = "report"      // a weekly activity report made
	OpLogs        OpType = "logs"        // someone read an app's own output
	OpRebuild     OpType = "rebuild"     // the served commit built again from scratch
	OpRenew       OpType = "renew"       // certificates obtained, renewed or given for an installation's domains
	OpDomain      OpType = "domain"      // a domain added to or removed from an installation, or its HTTPS changed
	OpProvision   OpType = "provision"   // a database server made
	OpReload      OpType = "reload"      // a database server restarted in place
	OpCopy        OpType = "copy"        // a verified backup copied off the host, read back there
	OpScale       OpType = "scale"       // the instances of each process type changed in number
	OpHeal        OpType = "heal"        // instances that stopped or vanished replaced by fresh ones
)

// OpTypes lists the operation types in the order people read them.
var OpTypes = []OpType{OpDeploy, OpSwitch, OpRestart, OpConfigure, OpMaintenance, OpExecute, OpDeprovision, OpBackup, OpRestore, OpPurge, OpReport, OpLogs, OpRebuild, OpDomain, OpRenew, OpProvision, OpReload, OpCopy, OpScale, OpHeal}
