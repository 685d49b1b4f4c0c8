package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHasherWaitsForSlot fills the semaphore by hand, so the test knows a
// hash must wait, and checks that waiting ends on cancel or on release.
func TestHasherWaitsForSlot(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1)
	h.sem <- struct{}{} // the only slot is busy

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "pw")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Hash returned %v while no slot was free", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash after cancel = %v, want context.Canceled", err)
	}

	go func() {
		_, err := h.Hash(context.Background(), "pw")
		done <- err
	}()
	<-h.sem // free the slot
	if err := <-done; err != nil {
		t.Fatalf("Hash after release = %v", err)
	}
	if len(h.sem) != 0 {
		t.Fatalf("slot not returned: %d in use", len(h.sem))
	}
}
