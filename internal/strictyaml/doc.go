// Package strictyaml decodes one YAML document into Go structs strictly, for
// files that steer privacy (the anonymisation policy, the pool
// configuration): what the author did not mean must not slip through.
//
// Unknown keys, duplicate keys, anchors and aliases (hard to audit, and a
// way to expand a small file exponentially), custom tags and scalars of the
// wrong type are errors. Each [Error] names the file, line and column and
// the dotted path of the key ("release.aggregates[1].lower"). The decoder
// records where every key stood ([Positions]), so that validation after
// decoding can point at the line that is wrong.
//
// It fills structs (fields named by their yaml tag), slices, maps with
// string keys, pointers, strings, bools, integers and finite float64s.
// Types with another YAML shape are decoded by a [Decoder.Custom] hook.
// It does not default anything: a missing key leaves the zero value, and
// the caller's validation decides whether that is allowed.
package strictyaml
