package main

import (
	"errors"

	"github.com/tarnkappe/tarnkappe/anonymize"
	tkbeam "github.com/tarnkappe/tarnkappe/beam"
)

// tkbeamPolicyKeyring returns the keyring path the policy names (relative to
// the policy file), used when --keys is not given.
func tkbeamPolicyKeyring(cfg tkbeam.Config) (string, error) {
	p, err := anonymize.ParsePolicy(cfg.PolicyFile, cfg.Policy)
	if err != nil {
		return "", err
	}
	if p.Keyring == "" {
		return "", errors.New("no keyring")
	}
	return p.Resolve(p.Keyring), nil
}
