package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestChartAndKustomizeAgree compares the chart's default rendering with config/default where the
// two are written separately: the permissions of each component (the operator's come from
// config/rbac/role.yaml in both; the scheduler's are written in each), the roles bound, and the
// pods' security settings, probes and flags other than names.
func TestChartAndKustomizeAgree(t *testing.T) {
	chart := helmTemplate(t, "kcloud-operator", "kcloud-operator-system")
	kust := kustomize(t, "config/default")
	for _, component := range []string{"operator", "scheduler"} {
		if diff := cmp.Diff(permissions(t, kust, component), permissions(t, chart, component)); diff != "" {
			t.Errorf("%s permissions, config/default (-) vs chart (+):\n%s", component, diff)
		}
		kd, cd := deployment(t, kust, component), deployment(t, chart, component)
		kp, cp := kd.Spec.Template.Spec, cd.Spec.Template.Spec
		if diff := cmp.Diff(kp.SecurityContext, cp.SecurityContext); diff != "" {
			t.Errorf("%s pod securityContext (-kustomize +chart):\n%s", component, diff)
		}
		if *kd.Spec.Replicas != *cd.Spec.Replicas {
			t.Errorf("%s replicas: kustomize %d, chart %d", component, *kd.Spec.Replicas, *cd.Spec.Replicas)
		}
		kc, cc := kp.Containers[0], cp.Containers[0]
		for _, d := range []struct {
			what string
			a, b any
		}{
			{"securityContext", kc.SecurityContext, cc.SecurityContext},
			{"livenessProbe", kc.LivenessProbe, cc.LivenessProbe},
			{"readinessProbe", kc.ReadinessProbe, cc.ReadinessProbe},
			{"resources", kc.Resources, cc.Resources},
			{"command", kc.Command, cc.Command},
			{"flags", flagNames(kc.Args), flagNames(cc.Args)},
			{"env", envNames(kc.Env), envNames(cc.Env)},
		} {
			if diff := cmp.Diff(d.a, d.b); diff != "" {
				t.Errorf("%s container %s (-kustomize +chart):\n%s", component, d.what, diff)
			}
		}
	}
}

// permissions are the rules a component's ServiceAccount gets from the rendered roles, by the
// namespace they apply in ("" cluster-wide, "release" the install namespace), plus the built-in
// roles bound; the objects' names do not matter.
func permissions(t *testing.T, objs []*unstructured.Unstructured, component string) map[string][]string {
	t.Helper()
	sa := ""
	for _, o := range byKind(objs, "ServiceAccount") {
		if o.GetLabels()["app.kubernetes.io/component"] == component {
			sa = o.GetName()
		}
	}
	if sa == "" {
		t.Fatalf("no ServiceAccount of %s", component)
	}
	rules := map[string][]rbacv1.PolicyRule{}
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, o := range byKind(objs, kind) {
			var r rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				t.Fatal(err)
			}
			rules[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = r.Rules
		}
	}
	out := map[string][]string{}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, o := range byKind(objs, kind) {
			var b rbacv1.RoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
				continue
			}
			scope := ""
			switch b.Namespace {
			case "":
			case "kcloud-operator-system":
				scope = "release"
			default:
				scope = b.Namespace
			}
			refNS := b.Namespace
			if b.RoleRef.Kind == "ClusterRole" {
				refNS = ""
			}
			rs, ok := rules[b.RoleRef.Kind+"/"+refNS+"/"+b.RoleRef.Name]
			if !ok {
				out[scope] = append(out[scope], "built-in "+b.RoleRef.Kind+" "+b.RoleRef.Name)
				continue
			}
			for _, r := range rs {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							out[scope] = append(out[scope], v+" "+res+"."+g+" "+strings.Join(r.ResourceNames, ","))
						}
					}
				}
				for _, u := range r.NonResourceURLs {
					for _, v := range r.Verbs {
						out[scope] = append(out[scope], v+" "+u)
					}
				}
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
		out[k] = slices.Compact(out[k])
	}
	if len(out) == 0 {
		t.Fatalf("no binding for %s's ServiceAccount %s", component, sa)
	}
	return out
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, component string) *appsv1.Deployment {
	t.Helper()
	for _, o := range byKind(objs, "Deployment") {
		if o.GetLabels()["app.kubernetes.io/component"] != component {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	t.Fatalf("no Deployment of %s", component)
	return nil
}

func flagNames(args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func envNames(env []corev1.EnvVar) []string {
	var out []string
	for _, e := range env {
		out = append(out, e.Name)
	}
	slices.Sort(out)
	return out
}
