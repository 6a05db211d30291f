package naming

import "strconv"

// DeploymentName is the object name of GitHub deployment id in repository
// of GitHub id repositoryID (0: unknown), e.g.
// "liatrio-gitpulse-deploy-145988746-<hash>". A deployment id is unique on
// GitHub, but the identity keeps the repository's (its id, or without one
// its name) so that hand-made deliveries reusing an id in two repositories
// stay apart.
func DeploymentName(repository string, repositoryID, id int64) string {
	n := strconv.FormatInt(id, 10)
	return objectName(repository+"-deploy-"+n, repositoryIdentity("deployment", repository, repositoryID, n))
}
