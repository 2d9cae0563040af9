package store

// OpType is what kind of change an operation is. The names are Aptible's.
type OpType string

// Operation types.
const (
	OpDeploy      OpType = "deploy"      // a push deployed a commit
	OpSwitch             = "switch"      // the channel changed or a commit was pinned: the rollback
	OpRestart            = "restart"     // a fresh instance of the served commit
	OpConfigure          = "configure"   // environment variables changed
	OpMaintenance        = "maintenance" // maintenance mode on or off
	OpExecute            = "execute"     // a one-off command in the serving instance
	OpDeprovision        = "deprovision" // traffic stopped, instances deleted
	OpBackup             = "backup"      // a volume or store backup, verified
	OpRestore            = "restore"     // a volume restored from a backup
	OpPurge              = "purge"       // backups past retention deleted
	OpReport             = "report"      // a weekly activity report made
)

// OpTypes lists the operation types in the order people read them.
var OpTypes = []OpType{OpDeploy, OpSwitch, OpRestart, OpConfigure, OpMaintenance, OpExecute, OpDeprovision, OpBackup, OpRestore, OpPurge, OpReport}
