package api_test

import (
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	typedv1 "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"

	"github.com/liatrio/gitpulse/internal/testenv"
)

func apiextensions(env *testenv.Env) typedv1.CustomResourceDefinitionInterface {
	return apiextensionsclient.NewForConfigOrDie(env.Config()).ApiextensionsV1().CustomResourceDefinitions()
}
