package vmstore

import (
	"errors"
	"testing"
	"time"
)

// TestUseGrant: uses are counted up to the maximum; entries of expired
// grants are swept by later calls.
func TestUseGrant(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := Open(Options{InMemory: true, GCInterval: -1, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := []byte("grant-a1"), []byte("grant-b2")
	expA, expB := now.Add(time.Minute), now.Add(time.Hour)
	for i := 0; i < 2; i++ {
		if err := s.UseGrant(a, expA, 2); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if err := s.UseGrant(a, expA, 2); !errors.Is(err, ErrGrantUsedUp) {
		t.Fatalf("third use: %v", err)
	}
	if err := s.UseGrant(b, expB, 0); err != nil { // 0: once
		t.Fatal(err)
	}
	if err := s.UseGrant(b, expB, 0); !errors.Is(err, ErrGrantUsedUp) {
		t.Fatalf("second use of a one-use grant: %v", err)
	}
	now = now.Add(2 * time.Minute) // a expired
	if err := s.UseGrant([]byte("grant-c3"), now.Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GrantUses(a, expA); n != 0 {
		t.Fatalf("expired grant's count not swept: %d", n)
	}
	if n, _ := s.GrantUses(b, expB); n != 1 {
		t.Fatalf("live grant's count: %d", n)
	}
}
