package channels

import "errors"

var (
	// ErrInvalidName means an app, environment or branch name is not allowed.
	ErrInvalidName = errors.New("invalid name")
	// ErrUnknownApp means no app has that name.
	ErrUnknownApp = errors.New("unknown app")
	// ErrUnknownEnvironment means no environment has that name.
	ErrUnknownEnvironment = errors.New("unknown environment")
	// ErrUnknownInstallation means the app is not installed in that environment.
	ErrUnknownInstallation = errors.New("unknown installation")
	// ErrExists means the thing to create already exists.
	ErrExists = errors.New("already exists")
	// ErrUnknownRef means the app has no such branch, tag or commit.
	ErrUnknownRef = errors.New("unknown branch, tag or commit")
	// ErrAmbiguousRef means a short commit ID names more than one commit.
	ErrAmbiguousRef = errors.New("ambiguous short commit ID")
	// ErrPinned means the installation follows a pinned commit and ignores pushes.
	ErrPinned = errors.New("installation is pinned to a commit")
	// ErrCancelled means someone cancelled the operation.
	ErrCancelled = errors.New("cancelled")
	// ErrShuttingDown means the engine is stopping and takes no new work.
	ErrShuttingDown = errors.New("slipway is shutting down")
	// ErrInUse means the thing to delete still has installations.
	ErrInUse = errors.New("still in use")
	// ErrUnknownUser means no user has that name.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownKey means no key has that fingerprint (or not one of yours).
	ErrUnknownKey = errors.New("unknown key")
	// ErrNotRunning means the operation is not queued or running.
	ErrNotRunning = errors.New("operation is not running")
	// ErrExecFailed means a one-off command got no exit status: it could not
	// start, or its instance went away under it.
	ErrExecFailed = errors.New("the command could not run")
)
