package amqp

import "sync"

// tracker starts goroutines and waits for them. Once closed it refuses new ones, so a shutdown
// can wait for a fixed set (DESIGN.md: one tracked helper that refuses after shutdown began).
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs fn on a new goroutine unless the tracker is closed; it reports whether it did.
func (t *tracker) Go(fn func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}

// Close refuses further goroutines.
func (t *tracker) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// Wait waits for every goroutine started so far.
func (t *tracker) Wait() { t.wg.Wait() }
