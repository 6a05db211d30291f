// Package gitpulse is the recorder function's root for `kn func`: the
// builder imports this package and calls New (see docs/architecture.md).
// Everything lives in functions/recorder and pkg/.
package gitpulse

import recorderfn "github.com/liatrio/gitpulse/functions/recorder"

// Function is the recorder function.
type Function = recorderfn.Function

// New returns a recorder instance for func-go's scaffolding.
func New() *Function { return recorderfn.New() }
