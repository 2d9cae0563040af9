package certs

import "time"

// Due reports whether info should be renewed at now: before ahead of its
// expiry (the daemon's default is 30 days), or, for a certificate that lives
// less than three times before (Let's Encrypt's 6-day ones), once two thirds
// of its lifetime have passed, as Let's Encrypt advises.
func Due(info Info, now time.Time, before time.Duration) bool {
	return !now.Before(RenewAt(info, before))
}

// RenewAt is the moment Due turns true, for scheduling.
func RenewAt(info Info, before time.Duration) time.Time {
	lifetime := info.NotAfter.Sub(info.NotBefore)
	if lifetime < 3*before {
		return info.NotBefore.Add(lifetime * 2 / 3)
	}
	return info.NotAfter.Add(-before)
}

// Backoff is how long to wait before the next attempt after failures
// failed ones in a row: 1 h, 2 h, 4 h, ... at most a day, so a domain whose
// DNS is not ready yet gets a certificate soon after it is, without pressing
// on the CA's failed-validation limits. A rate limit's own Retry-After (see
// RetryAfter) takes precedence when longer.
func Backoff(failures int) time.Duration {
	const most = 24 * time.Hour
	if failures < 1 {
		return 0
	}
	if failures > 5 {
		return most
	}
	return min(time.Hour<<(failures-1), most)
}
