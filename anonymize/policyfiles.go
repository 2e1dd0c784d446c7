package anonymize

// PolicyFile is a file a policy reads, with the key that names it.
type PolicyFile struct {
	Key  string // the policy key, e.g. "opt_out.file"
	Path string // resolved against the policy's folder
}

// Files lists every file the policy reads besides itself: the keyring, the
// opt-out list, the hierarchy tables and the public partition list, each
// resolved as the Runner opens it. A caller checks its outputs against them
// (the CLI refuses an output that would overwrite one: arrowio.CheckPaths).
func (p *Policy) Files() []PolicyFile {
	var fs []PolicyFile
	add := func(key, path string) {
		if path != "" {
			fs = append(fs, PolicyFile{Key: key, Path: p.Resolve(path)})
		}
	}
	add("keyring", p.Keyring)
	if o := p.OptOut; o != nil {
		add("opt_out.file", o.File)
	}
	for _, c := range p.Columns {
		if g := c.Generalize; g != nil && g.Hierarchy.Type == "table" {
			add("columns."+c.Name+".generalize.hierarchy.file", g.Hierarchy.File)
		}
	}
	if k := p.KAnon; k != nil {
		for _, q := range k.QuasiIdentifiers {
			if h := k.Hierarchies[q]; h.Type == "table" {
				add("kanon.hierarchies."+q+".file", h.File)
			}
		}
	}
	if r := p.Release; r != nil && r.Public != nil {
		add("release.public.file", r.Public.File)
	}
	return fs
}
