package baseimage

import "errors"

// Errors of the Debian image build, each already a sentence a person can act
// on; callers add the image's name in front.
var (
	ErrNoMmdebstrap      = errors.New("mmdebstrap is not installed: apt-get install mmdebstrap")
	ErrNeedRoot          = errors.New("building the Debian image needs root (mmdebstrap runs in root mode, and importing needs incusd's socket): run it as root")
	ErrMirrorUnreachable = errors.New("the Debian mirror does not answer")
)
