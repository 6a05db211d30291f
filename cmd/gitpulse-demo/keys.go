package main

import (
	"fmt"
	"strings"
	"time"
)

// printFourKeys prints the four DORA keys and review latency of the story
// from the exposition lines, as the recording rules in config/ compute them
// over a window (here: everything recorded).
func printFourKeys(lines []string) {
	sum := func(prefix string, match ...string) float64 {
		total := 0.0
	next:
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			for _, m := range match {
				if !strings.Contains(l, m) {
					continue next
				}
			}
			var v float64
			fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &v)
			total += v
		}
		return total
	}
	mean := func(family string) string {
		n := sum(family + "_count{")
		if n == 0 {
			return "n/a"
		}
		return (time.Duration(sum(family+"_sum{")/n) * time.Second).String()
	}
	success := sum("gitpulse_deployments_total{", `state="success"`)
	failed := sum("gitpulse_deployments_total{", `state="failure"`) + sum("gitpulse_deployments_total{", `state="error"`)
	ratio := "n/a"
	if success+failed > 0 {
		ratio = fmt.Sprintf("%.0f%%", 100*failed/(success+failed))
	}
	fmt.Println("the four keys (all repositories and environments, everything recorded):")
	fmt.Printf("  deployment frequency       %.0f successful deployment(s)\n", success)
	fmt.Printf("  lead time for changes      %s (mean, pull request opened -> first successful deployment)\n", mean("gitpulse_change_lead_time_seconds"))
	fmt.Printf("  change failure rate        %s (failed / concluded deployment statuses)\n", ratio)
	fmt.Printf("  failed deployment recovery %s (mean, first failure -> next success)\n", mean("gitpulse_failed_deployment_recovery_seconds"))
	fmt.Printf("  review latency             %s to first review, %s to approval (mean)\n",
		mean("gitpulse_pull_request_time_to_first_review_seconds"), mean("gitpulse_pull_request_time_to_approval_seconds"))
}
