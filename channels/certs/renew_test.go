package certs

import (
	"errors"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ninety := Info{NotBefore: start, NotAfter: start.Add(90 * day)}
	six := Info{NotBefore: start, NotAfter: start.Add(6 * day)} // Let's Encrypt's short-lived profile
	for _, tc := range []struct {
		name   string
		info   Info
		now    time.Time
		before time.Duration
		want   bool
	}{
		{"90 days, fresh", ninety, start.Add(day), 30 * day, false},
		{"90 days, a second before 30 days ahead", ninety, start.Add(60*day - time.Second), 30 * day, false},
		{"90 days, exactly 30 days ahead", ninety, start.Add(60 * day), 30 * day, true},
		{"90 days, expired", ninety, start.Add(100 * day), 30 * day, true},
		{"90 days, exactly three times before: not short", ninety, start.Add(59 * day), 30 * day, false},
		{"6 days, after 3 days", six, start.Add(3 * day), 30 * day, false},
		{"6 days, a second before 4 days", six, start.Add(4*day - time.Second), 30 * day, false},
		{"6 days, at 4 days (two thirds)", six, start.Add(4 * day), 30 * day, true},
		{"60 days with 30 ahead: two thirds, day 40", Info{NotBefore: start, NotAfter: start.Add(60 * day)}, start.Add(39 * day), 30 * day, false},
		{"60 days with 30 ahead: two thirds, day 40 reached", Info{NotBefore: start, NotAfter: start.Add(60 * day)}, start.Add(40 * day), 30 * day, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Due(tc.info, tc.now, tc.before); got != tc.want {
				t.Errorf("Due at %v = %v, want %v (renew at %v)", tc.now, got, tc.want, RenewAt(tc.info, tc.before))
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for failures, want := range map[int]time.Duration{
		0:    0,
		1:    time.Hour,
		2:    2 * time.Hour,
		3:    4 * time.Hour,
		5:    16 * time.Hour,
		6:    24 * time.Hour,
		100:  24 * time.Hour,
		1000: 24 * time.Hour,
	} {
		if got := Backoff(failures); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestRetryAfterIsOnlyForRateLimits(t *testing.T) {
	t.Parallel()
	if _, ok := RetryAfter(errors.New("boom")); ok {
		t.Error("a plain error is a rate limit")
	}
	if _, ok := RetryAfter(&IssueError{Kind: KindChallenge}); ok {
		t.Error("a challenge failure is a rate limit")
	}
	wrapped := errors.Join(errors.New("renewing"), &IssueError{Kind: KindRateLimited, RetryAfter: time.Minute})
	if d, ok := RetryAfter(wrapped); !ok || d != time.Minute {
		t.Errorf("RetryAfter = %v, %v; want 1m, true", d, ok)
	}
}
