package database

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Credentials are what an app logs in with. The store keeps them as a
// secret; nothing in this package logs them.
type Credentials struct {
	User     string
	Password string
	Database string
}

// newPassword is 24 random bytes, URL-safe: it goes into DATABASE_URL as
// it is, with nothing to escape.
func newPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// scramIterations is Postgres's own default (scram_iterations, 15's only).
const scramIterations = 4096

// scramVerifier is the SCRAM-SHA-256 secret Postgres stores for password
// (RFC 5802/7677, in the format of pg_authid.rolpassword). Handing the
// server this instead of the password means the password itself never
// reaches it: not its statement log, not an error message quoting the
// statement.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
