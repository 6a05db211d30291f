package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	stablev1client "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/typed/stable/v1"
	"github.com/liatrio/gitpulse/pkg/jsonscan"
)

// The objects' first lists, decoded as they stream in. A typed client reads
// each page whole, scans it once to find its kind and decodes it again into
// typed objects, managed fields, annotations and status included, that
// slimPage then reduces to records: at 70,000 pull requests that was most of
// the function's CPU at start-up (a CPU profile: the body read 13%, the
// kind scan 13%, the decode 21%, their garbage a further 14% in the
// collector). streamedList decodes the page from the response body one item
// at a time into the record's inputs only (listedMeta, listedStatus; the
// managed fields are validated, never decoded; itemfast.go decodes the
// rest by hand in the same pass, encoding/json where it cannot decide) and
// makes the record at once, so a page never exists decoded. Watches keep
// the typed client: they carry one object at a time.

// listedMeta is what a record needs of an object's metadata.
type listedMeta struct {
	Name              string      `json:"name"`
	Namespace         string      `json:"namespace"`
	UID               types.UID   `json:"uid"`
	ResourceVersion   string      `json:"resourceVersion"`
	CreationTimestamp metav1.Time `json:"creationTimestamp"`
	Annotations       struct {
		Repository string `json:"stable.liatr.io/repository"`
	} `json:"annotations"`
}

// listedStatus is what a record needs of an object's status.
type listedStatus struct {
	RepositoryNamedAt *metav1.Time `json:"repositoryNamedAt"`
}

func (m *listedMeta) objectMeta() metav1.ObjectMeta {
	om := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
	}
	if a := m.Annotations; a.Repository != "" {
		om.Annotations = map[string]string{stablev1.AnnotationRepository: a.Repository}
	}
	return om
}

// The list items as decoded: the typed object with its metadata and status
// shadowed (a field of the outer struct wins over the embedded one of the
// same JSON name; encoding/json skips the members a struct does not have).
type (
	listedPullRequest struct {
		stablev1.PullRequest
		Metadata listedMeta   `json:"metadata"`
		Status   listedStatus `json:"status"`
	}
	listedBranch struct {
		stablev1.Branch
		Metadata listedMeta   `json:"metadata"`
		Status   listedStatus `json:"status"`
	}
	listedDeployment struct {
		stablev1.GitHubDeployment
		Metadata listedMeta   `json:"metadata"`
		Status   listedStatus `json:"status"`
	}
)

// decodeItem decodes one list item (its JSON, valid) and returns its
// record.
type decodeItem func(item []byte) (runtime.Object, error)

// itemDecoder makes the decodeItem of one list: it decodes the list's items
// one after another into one scratch item. A new item for each cost the
// start-up at 100k objects ~77 MB of its ~374 MB allocated, ~700 bytes an
// item: the record keeps nothing of the item (compactObject copies its
// values, interns its strings and hashes its name).
type itemDecoder func() decodeItem

func recordOf(obj any) (runtime.Object, error) {
	r, err := compactObject(obj)
	if err != nil {
		return nil, err
	}
	return r.(runtime.Object), nil
}

// object sets the typed object's metadata from the listed one and returns
// it, for compactObject.
func (it *listedPullRequest) object() any {
	it.PullRequest.ObjectMeta = it.Metadata.objectMeta()
	it.PullRequest.Status.RepositoryNamedAt = it.Status.RepositoryNamedAt
	return &it.PullRequest
}

func (it *listedBranch) object() any {
	it.Branch.ObjectMeta = it.Metadata.objectMeta()
	it.Branch.Status.RepositoryNamedAt = it.Status.RepositoryNamedAt
	return &it.Branch
}

func (it *listedDeployment) object() any {
	it.GitHubDeployment.ObjectMeta = it.Metadata.objectMeta()
	it.GitHubDeployment.Status.RepositoryNamedAt = it.Status.RepositoryNamedAt
	return &it.GitHubDeployment
}

// decodeAs makes a decodeItem that decodes each item as T into one scratch
// T, cleared first, in one pass of what the record reads (the fast method,
// itemfast.go) or, where that cannot decide as encoding/json would, with
// encoding/json, and returns its record.
func decodeAs[T any, PT interface {
	*T
	object() any
	fast([]byte) bool
}]() decodeItem {
	var it, zero T
	return func(item []byte) (runtime.Object, error) {
		it = zero
		if !PT(&it).fast(item) {
			it = zero
			if err := json.Unmarshal(item, &it); err != nil {
				return nil, err
			}
		}
		return recordOf(PT(&it).object())
	}
}

// The kinds' item decoders.
var (
	decodePullRequest itemDecoder = decodeAs[listedPullRequest]
	decodeBranch      itemDecoder = decodeAs[listedBranch]
	decodeDeployment  itemDecoder = decodeAs[listedDeployment]
)

// objectListFuncs are the three kinds' list functions.
type objectListFuncs struct{ prs, brs, des cache.ListWithContextFunc }

// objectLists are the objects' list functions: paged, and streamed over the
// REST client, or, where the clientset has no REST client (client-go's fake
// clientsets, in unit tests), listed by the typed client and slimmed per
// page.
func objectLists(c stablev1client.StableV1Interface, ns string) objectListFuncs {
	if rc, ok := c.RESTClient().(*rest.RESTClient); !ok || rc != nil {
		rc := c.RESTClient()
		return objectListFuncs{
			prs: paged(streamedList(rc, ns, "pullrequests", decodePullRequest), objectListPageSize),
			brs: paged(streamedList(rc, ns, "branches", decodeBranch), objectListPageSize),
			des: paged(streamedList(rc, ns, "githubdeployments", decodeDeployment), objectListPageSize),
		}
	}
	return objectListFuncs{
		prs: slimPage(paged(c.PullRequests(ns).List, objectListPageSize), compactObject),
		brs: slimPage(paged(c.Branches(ns).List, objectListPageSize), compactObject),
		des: slimPage(paged(c.GitHubDeployments(ns).List, objectListPageSize), compactObject),
	}
}

// streamedList lists one page of resource in namespace ns with client (a
// gitpulse REST client), each item made a record by decode as it arrives.
// Errors are the typed client's: an answer other than 2xx is the API
// server's Status (so a continue token's 410 Gone is IsResourceExpired to
// the reflector, which lists again).
func streamedList(client rest.Interface, ns, resource string, decode itemDecoder) cache.ListWithContextFunc {
	return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		body, err := client.Get().Namespace(ns).Resource(resource).
			VersionedParams(&o, metav1.ParameterCodec).Stream(ctx)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		page, err := decodeList(body, decode)
		if err != nil {
			return nil, fmt.Errorf("decoding a list of %s: %w", resource, err)
		}
		return page, nil
	}
}

// decodeList reads a list object ({"apiVersion", "kind", "metadata",
// "items": [...]}, in any order), keeping its list metadata and each item's
// record, by the decodeItem newDecode makes for it. Each item passes through jsonscan's Reader, which validates it
// in the same pass that finds its end (a json.Decoder scans each value
// once to find its end and again to decode it).
func decodeList(r io.Reader, newDecode itemDecoder) (*slimList, error) {
	s := jsonscan.NewReader(r, 64<<10)
	if err := s.Expect('{'); err != nil {
		return nil, err
	}
	page := &slimList{}
	if c, err := s.Peek(); err != nil {
		return nil, err
	} else if c == '}' {
		return page, s.Expect('}')
	}
	for {
		key, err := s.Next(jsonscan.String)
		if err != nil {
			return nil, err
		}
		if err := s.Expect(':'); err != nil {
			return nil, err
		}
		switch string(key) {
		case `"metadata"`:
			v, err := s.NextValue(1)
			if err != nil {
				return nil, err
			}
			var m metav1.ListMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, err
			}
			page.ListMeta = metav1.ListMeta{ResourceVersion: m.ResourceVersion, Continue: m.Continue, RemainingItemCount: m.RemainingItemCount}
		case `"items"`:
			if err := decodeItems(s, page, newDecode()); err != nil {
				return nil, err
			}
		default: // apiVersion, kind
			if _, err := s.NextValue(1); err != nil {
				return nil, err
			}
		}
		c, err := s.Peek()
		if err != nil {
			return nil, err
		}
		if err := s.Expect(c); err != nil {
			return nil, err
		}
		switch c {
		case ',':
		case '}':
			return page, nil
		default:
			return nil, fmt.Errorf("invalid character %q after a list member at offset %d", c, s.Offset()-1)
		}
	}
}

// decodeItems reads the items' array (or null, as Go encodes an empty
// list) into page.
func decodeItems(s *jsonscan.Reader, page *slimList, decode decodeItem) error {
	c, err := s.Peek()
	if err != nil {
		return err
	}
	if c == 'n' {
		_, err := s.Next(func(b []byte, i int) (int, bool) { return jsonscan.Literal(b, i, "null") })
		return err
	}
	if err := s.Expect('['); err != nil {
		return fmt.Errorf("want the items' array: %w", err)
	}
	if c, err := s.Peek(); err != nil {
		return err
	} else if c == ']' {
		return s.Expect(']')
	}
	for {
		item, err := s.NextValue(2)
		if err != nil {
			return err
		}
		rec, err := decode(item)
		if err != nil {
			return err
		}
		page.Items = append(page.Items, rec)
		c, err := s.Peek()
		if err != nil {
			return err
		}
		if err := s.Expect(c); err != nil {
			return err
		}
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return fmt.Errorf("invalid character %q after an item at offset %d", c, s.Offset()-1)
		}
	}
}
