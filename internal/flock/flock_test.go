package flock

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTryLock: a second open file cannot take a held lock; closing the
// holder frees it.
func TestTryLock(t *testing.T) {
	if !Supported {
		t.Skip("no flock on this system")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if ok, err := TryLock(a); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if ok, err := TryLock(b); ok || err != nil {
		t.Fatalf("second lock while held: got %v %v, want false nil", ok, err)
	}
	a.Close()
	if ok, err := TryLock(b); !ok || err != nil {
		t.Fatalf("lock after the holder closed: %v %v", ok, err)
	}
}

// TestTryLockDir: directories lock too (scratch folders are locked so).
func TestTryLockDir(t *testing.T) {
	if !Supported {
		t.Skip("no flock on this system")
	}
	d := t.TempDir()
	a, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, _ := TryLock(a); !ok {
		t.Fatal("could not lock a directory")
	}
	if ok, _ := TryLock(b); ok {
		t.Fatal("a held directory lock was taken twice")
	}
}
