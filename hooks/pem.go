package hooks

import (
	"encoding/pem"
	"errors"
	"strings"
)

// splitPEM separates what certs set reads on stdin into the certificate
// chain and the private key, in whatever order they come.
func splitPEM(input []byte) (chain, key []byte, err error) {
	rest := input
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			chain = append(chain, pem.EncodeToMemory(block)...)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			if key != nil {
				return nil, nil, errors.New("stdin holds two private keys: give the certificate chain and its one key")
			}
			key = pem.EncodeToMemory(block)
		default:
			return nil, nil, errors.New("stdin holds a PEM block of type " + block.Type + ": give CERTIFICATE blocks and one PRIVATE KEY")
		}
	}
	switch {
	case chain == nil && key == nil:
		return nil, nil, errors.New("stdin holds no PEM: give the certificate chain and its key (cat fullchain.pem privkey.pem | ssh ... certs set APP/ENV DOMAIN)")
	case chain == nil:
		return nil, nil, errors.New("stdin holds a key but no certificate")
	case key == nil:
		return nil, nil, errors.New("stdin holds no private key: give it with the chain (cat fullchain.pem privkey.pem | ...)")
	}
	return chain, key, nil
}
