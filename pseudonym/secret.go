package pseudonym

import (
	"fmt"
	"io"
	"log/slog"
)

// redactedText is what every key-holding type prints instead of its content.
const redactedText = "[REDACTED]"

// redacted is embedded in every type that holds key material or state derived
// from it (keyring, HMAC pads, AES keys). Its methods are promoted, so fmt
// verbs (%v, %+v, %#v, %s, %x), encoding/json and encoding/text print
// "[REDACTED]" instead of the fields, whatever a caller does by mistake.
type redacted struct{}

func (redacted) String() string                      { return redactedText }
func (redacted) GoString() string                    { return redactedText }
func (redacted) Format(f fmt.State, _ rune)          { io.WriteString(f, redactedText) }
func (redacted) MarshalJSON() ([]byte, error)        { return []byte(`"` + redactedText + `"`), nil }
func (redacted) MarshalText() ([]byte, error)        { return []byte(redactedText), nil }
func (redacted) MarshalBinary() ([]byte, error)      { return []byte(redactedText), nil }
func (redacted) LogValue() slog.Value                { return slog.StringValue(redactedText) }
func (redacted) AppendText(b []byte) ([]byte, error) { return append(b, redactedText...), nil }

// masterKeySize is the size of a keyring master key: 256 bits.
const masterKeySize = 32

// masterKey is one keyring entry. The key bytes live in a fixed-size array so
// that Destroy can zero them in place (a slice could have been copied by
// append and left behind).
type masterKey struct {
	redacted
	id      string
	created string // RFC 3339, informational
	key     [masterKeySize]byte
}

func (k *masterKey) destroy() {
	clear(k.key[:])
}

// zero overwrites b; used for temporary derived keys.
func zero(b []byte) { clear(b) }

// Compile-time checks: every key-holding type redacts itself for fmt, JSON
// and slog.
var (
	_ fmt.Formatter  = (*Keyring)(nil)
	_ fmt.Stringer   = (*Keyring)(nil)
	_ fmt.GoStringer = (*Keyring)(nil)
	_ fmt.Formatter  = (*HMAC)(nil)
	_ fmt.Formatter  = (*Hasher)(nil)
	_ fmt.Formatter  = (*Reversible)(nil)
	_ fmt.Formatter  = (*FF1)(nil)
	_ fmt.Formatter  = (*DateShift)(nil)
	_ slog.LogValuer = (*HMAC)(nil)
	_ slog.LogValuer = (*masterKey)(nil)

	_ valueTransform = hmacTransform{}
	_ valueTransform = sivTransform{}
	_ valueTransform = ff1Transform{}
)
