package keystrata

import "sync/atomic"

// lifeline guards a C handle against use after free without a lock on the
// hot path. state counts calls in flight; closedBit marks the handle closed.
// Exactly one party frees the handle: Close (or the finalizer) if nothing
// is in flight, else the last call to finish.
type lifeline struct{ state atomic.Int64 }

const closedBit = int64(1) << 62

// acquire registers a call in flight; false once the handle is closed.
func (l *lifeline) acquire() bool {
	for {
		s := l.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if l.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// release ends a call; true means the caller is the last one after a close
// and must free the handle.
func (l *lifeline) release() bool { return l.state.Add(-1) == closedBit }

// shut marks the handle closed. first is true for the first call only;
// freeNow is true if nothing was in flight (the caller must free).
func (l *lifeline) shut() (first, freeNow bool) {
	old := l.state.Or(closedBit)
	if old&closedBit != 0 {
		return false, false
	}
	return true, old == 0
}

func (l *lifeline) closed() bool { return l.state.Load()&closedBit != 0 }
