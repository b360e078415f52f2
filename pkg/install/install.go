// Package install applies the product's manifests to a cluster with server-side apply.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"kcloud.io/optimizer/config"
)

// FieldManager owns what the installer applies.
const FieldManager = "kcloud-install"

// Objects decodes every YAML document of the files in fsys matching pattern, in file-name order.
func Objects(fsys fs.FS, pattern string) ([]*unstructured.Unstructured, error) {
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		objs, err := Decode(path.Base(f), b)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Decode reads every YAML or JSON document of a file's content; name is for errors.
func Decode(name string, b []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// Applier applies objects through the dynamic client, mapping kinds through discovery.
type Applier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

// NewApplier builds an Applier for a cluster.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Apply server-side-applies one object; an object without a namespace gets defaultNamespace when
// its kind is namespaced.
func (a *Applier) Apply(ctx context.Context, obj *unstructured.Unstructured, defaultNamespace string) error {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset()
		if m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(defaultNamespace)
		}
		ri = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, objectName(obj), err)
	}
	return nil
}

func objectName(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() != "" {
		return obj.GetNamespace() + "/" + obj.GetName()
	}
	return obj.GetName()
}

// EnsureNamespace creates a namespace unless it exists.
func (a *Applier) EnsureNamespace(ctx context.Context, name string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	err := a.Apply(ctx, ns, "")
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// WaitEstablished waits until the named CRDs are Established, then forgets cached discovery.
func (a *Applier) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	gvr := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for {
			u, err := a.dyn.Resource(gvr).Get(ctx, n, metav1.GetOptions{})
			if err == nil {
				var crd apiextensionsv1.CustomResourceDefinition
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
					return err
				}
				if established(&crd) {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not Established after %s", n, timeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	a.mapper.Reset()
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// CRDs applies the product's CRDs (embedded from config/crd/bases) and waits until they are served;
// it returns their names.
func (a *Applier) CRDs(ctx context.Context) ([]string, error) {
	crds, err := Objects(config.CRDs, "crd/bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, crd := range crds {
		if err := a.Apply(ctx, crd, ""); err != nil {
			return nil, err
		}
		names = append(names, crd.GetName())
	}
	return names, a.WaitEstablished(ctx, names, time.Minute)
}

// ApplyCRDs applies the product's CRDs to the cluster of cfg and waits until they are served: a
// devcluster.Options.Install for a cluster that needs only the CRDs.
func ApplyCRDs(ctx context.Context, cfg *rest.Config) error {
	a, err := NewApplier(cfg)
	if err != nil {
		return err
	}
	_, err = a.CRDs(ctx)
	return err
}

// WebhooksAt applies the product's webhook configurations (embedded from config/webhook) with every
// webhook calling baseURL+path instead of a Service: for a local cluster whose apiserver reaches
// the operator on loopback. The operator's certificate rotator fills in the caBundle.
func (a *Applier) WebhooksAt(ctx context.Context, baseURL string) ([]string, error) {
	objs, err := Decode("webhook/manifests.yaml", config.Webhooks)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, obj := range objs {
		hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
		for i, h := range hooks {
			hook := h.(map[string]any)
			p, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{"url": baseURL + p}
			hooks[i] = hook
		}
		if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
			return nil, err
		}
		if err := a.Apply(ctx, obj, ""); err != nil {
			return nil, err
		}
		names = append(names, obj.GetName())
	}
	return names, nil
}
