// Package pseudonym replaces identifiers (VINs, customer ids, plates) with
// keyed pseudonyms, column by column over Apache Arrow arrays.
//
// # What it is for
//
// Consortium members pool data about the same vehicles without handing each
// other raw identifiers. Every member pseudonymizes with the same keyring
// and domain, so records of one vehicle still join; nobody without the key
// can compute, invert or brute-force the pseudonyms (a VIN has far too
// little entropy for an unkeyed hash).
//
// # Methods
//
//   - HMAC: HMAC-SHA256 truncated to Bits (default 128), encoded base32
//     (lowercase, no padding; or hex, base64url), optional prefix.
//     Irreversible. The default choice.
//   - Reversible: AES-SIV (RFC 5297, AEAD_AES_SIV_CMAC_512), deterministic,
//     with the key id in front ("3f9a0c1d-<base32>") so that a trustee holding
//     the keyring can Reveal a value after any number of rotations.
//   - FF1: NIST SP 800-38G FF1 (AES-256) over the VIN alphabet (radix 33),
//     length kept: a VIN becomes a VIN-shaped string, reversibly. FF1 does
//     not authenticate: decrypting with a wrong key or domain returns a
//     plausible wrong value, not an error. For VINs with valid check digits,
//     ValidVINCheckDigit on the result catches a wrong key 32 times in 33
//     (tarnkappe reveal does so by default).
//   - DateShift: per-subject time shift within ±MaxDays, derived from the key
//     and the subject, so all events of a subject move together and
//     intervals within the subject are kept.
//
// Column functions (HMAC.Column, Reversible.Column, FF1.Column,
// DateShift.Column) take string, large_string, binary, large_binary, int64
// (as decimal text) and dictionary arrays. A dictionary array keeps its
// indices (shared, not copied) and gets a new dictionary, so the cost is one
// pseudonym per distinct value. Plain columns are split across cores and
// memoize repeated values. Nulls stay null. Every output buffer comes from
// the caller's memory.Allocator and the caller releases the result.
//
// # Keys
//
// A Keyring holds 256-bit master keys from crypto/rand, each named by a
// public 8-hex-digit id (the first 4 bytes of SHA-256 over a label and the
// key, checked on load). One key is active; Rotate adds a new active key and
// keeps the old ones, so old reversible pseudonyms still reveal and old HMAC
// pseudonyms can be recomputed with HMACOptions.KeyID. Per-domain keys are
// derived with HKDF-SHA256 (crypto/hkdf): salt "tarnkappe/pseudonym/v1",
// info = purpose NUL domain, where the purpose names the algorithm. Two
// domains, or two algorithms in one domain, never share a key.
//
// Exactly (so that a partner can reimplement it; TestInteropDerivation pins
// it to an independent computation):
//
//	key id     = hex(SHA-256("tarnkappe/keyring/key-id/v1" || 0x00 || master)[:4])
//	domain key = HKDF-SHA256(ikm = master, salt = "tarnkappe/pseudonym/v1",
//	                         info = purpose || 0x00 || domain, L)
//	purposes   = "hmac-sha256" (L=32), "aes-siv-cmac-512" (L=64),
//	             "ff1-aes256" (L=32), "dateshift-hmac-sha256" (L=32)
//	HMAC       = encode(HMAC-SHA256(domain key, value)[:Bits/8]), prefix in front
//	Reversible = key id || "-" || base32(AES-SIV(domain key; AD1 =
//	             "tarnkappe/pseudonym/siv/v1", AD2 = domain; value)), lowercase,
//	             unpadded, canonical
//	DateShift  = (floor(u64(HMAC-SHA256(domain key, subject)[:8]) * steps / 2^64)
//	             - MaxDays*24h/g) * g, steps = 2*MaxDays*24h/g + 1
//
// Domains are 1-256 bytes of UTF-8 without control characters (so info is
// unambiguous). int64 values are pseudonymized as their decimal text.
//
// The keyring file is versioned JSON written 0600 through a temporary file
// and a rename (WriteFile). LoadKeyring refuses files that group or others
// can access (ErrInsecureKeyring) — failing closed, since a readable keyring
// is already leaked — and ParseKeyring is strict: unknown or duplicate
// fields, wrong format or version, wrong key size, ids that do not match
// their keys, duplicate ids and a missing active key are errors that name
// the file and field.
//
// # Promises
//
//   - Determinism: same keyring, domain, method and value ⇒ same pseudonym.
//   - Domain separation: different domains ⇒ unrelated pseudonyms.
//   - Key material never appears in errors, logs or fmt/JSON output: every
//     key-holding type prints "[REDACTED]"; errors quote file names, field
//     names, key ids, column names and row numbers, never keys, and FF1
//     errors give the character position, not the VIN. Destroy zeroes the
//     key bytes a type owns (crypto/aes keeps its key schedule private; it is
//     left to the garbage collector).
//   - Verification (HMAC.Verify, AES-SIV tag check) compares in constant time.
//
// # Speed
//
// An HMAC of a short value costs two SHA-256 block compressions and no
// allocation. The inner and outer states after the key blocks are
// precomputed once (FIPS 198-1 section 6) and saved with crypto/sha256's
// encoding.BinaryMarshaler; for values up to 55 bytes the inner and outer
// messages are laid out as single padded blocks, written to the restored
// digest (which compresses a full block straight from the buffer) and the
// chaining value read back from the saved state. This avoids the digest
// copies of Sum and of crypto/hmac (whose Reset in Go 1.26 also restores
// saved states, but pays two extra copies per value: ~1.35× the two-block
// floor versus ~1.05×). The fast path is checked against crypto/hmac when an
// HMAC is made and falls back to the general restore-write-sum path if they
// ever disagree; RFC 4231 vectors run through both paths. See
// benchmarks/pseudonym for the numbers.
//
// # Implementations
//
// HMAC, SHA-256, AES, CTR and HKDF are the standard library's. AES-SIV and
// AES-CMAC are implemented in this package from RFC 5297 and RFC 4493 on
// crypto/aes and crypto/subtle, because x/crypto has neither and
// github.com/secure-io/siv-go is not available to this build; they pass the
// RFC 5297 A.1/A.2 and RFC 4493 vectors. FF1 is github.com/capitalone/fpe
// v1.2.1, used because it passes all nine NIST FF1 samples (radix 10 and
// 36, AES-128/192/256) and supports radix 33; this package maps the VIN
// alphabet onto its digits, enforces radix^len ≥ 1,000,000 (length ≥ 4) and
// gives each goroutine its own cipher (fpe's is not safe for concurrent use).
//
// # What it does not do
//
// Pseudonyms are not anonymization: the rest of a record (positions, times,
// rare attribute combinations) can still identify a vehicle; use kanon,
// mobility and dp for that. Deterministic pseudonyms reveal equality (and
// Reversible reveals value length). FF1 output does not have a valid VIN
// check digit, and FF1 cannot tell a wrong key from the right one (see
// above). Removing a key from a keyring is a manual file edit.
package pseudonym
