// Package v1 holds the stable.liatr.io/v1 API: the PullRequest and Branch
// kinds that gitpulse's recorder writes from GitHub deliveries.
//
// +k8s:deepcopy-gen=package
// +groupName=stable.liatr.io
package v1
