package supervisor

import "errors"

var (
	// ErrRefused: the supervisor answered with an error (its reason follows).
	ErrRefused = errors.New("refused")
	// ErrProtocol: the supervisor's reply was not what the protocol says.
	ErrProtocol = errors.New("bad reply from the supervisor")
	// ErrNoSupervisor: nothing usable listens at the instance's control socket.
	ErrNoSupervisor = errors.New("no supervisor socket in the instance")
)
