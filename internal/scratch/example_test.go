package scratch_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tarnkappe/tarnkappe/internal/scratch"
)

// Spill rows to a scratch file and read them back twice; on disk they are
// ciphertext under a key that exists only in this process, a flipped byte
// is an error rather than altered rows, and Close removes the file.
func Example() {
	f, err := scratch.Create("", "spill-*")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	rows := strings.Repeat("WVWZZZ1JZXW000001,48.137,11.575\n", 3000) // ~96 KB: two chunks
	if _, err := io.WriteString(f, rows); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		if err := f.Rewind(); err != nil { // the first Rewind ends writing
			fmt.Println(err)
			return
		}
		back, err := io.ReadAll(f)
		fmt.Println("read back intact:", err == nil && string(back) == rows)
	}
	disk, _ := os.ReadFile(f.Name())
	fmt.Println("VIN on disk:", bytes.Contains(disk, []byte("WVWZZZ1JZXW000001")))
	fmt.Println("bytes on disk beyond the rows:", len(disk)-len(rows)) // a 16-byte GCM tag per chunk
	_, err = f.Write([]byte("more"))                                   // written once: no chunk is ever sealed twice
	fmt.Println(err)
	disk[100] ^= 1 // tamper with the first chunk
	os.WriteFile(f.Name(), disk, 0o600)
	f.Rewind()
	_, err = io.ReadAll(f)
	fmt.Println("tampering detected:", errors.Is(err, scratch.ErrCorrupt))
	f.Close()
	_, err = os.Stat(f.Name())
	fmt.Println("removed by Close:", os.IsNotExist(err))
	// Output:
	// read back intact: true
	// read back intact: true
	// VIN on disk: false
	// bytes on disk beyond the rows: 32
	// scratch: write after rewind
	// tampering detected: true
	// removed by Close: true
}
