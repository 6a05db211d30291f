package naming

import "strconv"

// DeploymentName is the object name of GitHub deployment id in repository,
// e.g. "liatrio-gitpulse-deploy-145988746-<hash>".
func DeploymentName(repository string, id int64) string {
	n := strconv.FormatInt(id, 10)
	return objectName(repository+"-deploy-"+n, identity("deployment", repository, n))
}
