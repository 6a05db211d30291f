// Command gitpulse-recorder serves the recorder function (the repository's
// root package) outside a cluster, as func-go's generated main does inside one.
package main

import (
	gitpulse "github.com/liatrio/gitpulse"
	"github.com/liatrio/gitpulse/internal/funcrunner"
)

func main() { funcrunner.Main(gitpulse.New()) }
