package ranks

import "time"

// sleeper sleeps for requested durations with the timer's overshoot
// carried over: a sleep that ran long shortens (or skips) the next ones, so
// that the total slept tracks the total requested. time.Sleep of a few
// hundred microseconds overshoots by tens of microseconds to milliseconds
// on a loaded machine, which would otherwise stretch --dilate and --slow
// far beyond their factors. Not safe for concurrent use.
type sleeper struct {
	debt time.Duration // requested but not yet slept (negative: overslept)
}

// sleep adds d to the debt and sleeps it off when positive; it returns the
// time actually slept.
func (s *sleeper) sleep(d time.Duration) time.Duration {
	s.debt += d
	if s.debt <= 0 {
		return 0
	}
	t0 := time.Now()
	time.Sleep(s.debt)
	slept := time.Since(t0)
	s.debt -= slept
	return slept
}
