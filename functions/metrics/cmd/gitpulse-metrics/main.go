// Command gitpulse-metrics serves the metrics function outside a cluster (make
// run, the local stack), as func-go's generated main does inside one.
package main

import (
	function "github.com/liatrio/gitpulse/functions/metrics"
	"github.com/liatrio/gitpulse/functions/metrics/internal/funcrunner"
)

func main() { funcrunner.Main(function.New()) }
