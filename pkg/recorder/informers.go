package recorder

import (
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/client/informers/externalversions"
)

// NewInformerFactory is an informer factory for Options.Informers: the
// namespace's PullRequests and Branches, no periodic resync (the recorder
// only reads the cache; it never reconciles from it), and without
// managedFields, which the recorder never reads and which would be most of
// each cached object's memory.
func NewInformerFactory(client versioned.Interface, namespace string) externalversions.SharedInformerFactory {
	return externalversions.NewSharedInformerFactoryWithOptions(client, 0,
		externalversions.WithNamespace(namespace),
		externalversions.WithTransform(dropManagedFields))
}

func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
