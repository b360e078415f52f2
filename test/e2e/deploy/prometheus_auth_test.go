package deploy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The chart's Prometheus authentication values become flags naming files that lie in volumes of the
// Secrets and ConfigMaps they name.
func TestChartPrometheusAuth(t *testing.T) {
	objs := helmTemplate(t, "kcloud-operator", "kcloud-operator-system",
		"--set", "operator.prometheusURL=https://thanos-querier.monitoring:9091",
		"--set", "operator.prometheusAuth.bearerTokenSecret.name=prom-token",
		"--set", "operator.prometheusAuth.bearerTokenSecret.key=bearer",
		"--set", "operator.prometheusAuth.caConfigMap.name=prom-ca",
		"--set", "operator.prometheusAuth.clientCertSecret=prom-client",
		"--set", "operator.keplerVersion=0.9")
	d := deployment(t, objs, "operator")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	flags := map[string]string{}
	for _, a := range c.Args {
		name, value, _ := strings.Cut(a, "=")
		flags[name] = value
	}
	// Where a file is, and what the volume mounted there holds.
	source := func(path string) string {
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(path, m.MountPath+"/") {
				continue
			}
			for _, v := range pod.Volumes {
				if v.Name != m.Name {
					continue
				}
				switch {
				case v.Secret != nil:
					return "secret/" + v.Secret.SecretName + "/" + strings.TrimPrefix(path, m.MountPath+"/")
				case v.ConfigMap != nil:
					return "configmap/" + v.ConfigMap.Name + "/" + strings.TrimPrefix(path, m.MountPath+"/")
				}
			}
		}
		return ""
	}
	for flag, want := range map[string]string{
		"--prometheus-bearer-token-file": "secret/prom-token/bearer",
		"--prometheus-ca-file":           "configmap/prom-ca/ca.crt",
		"--prometheus-cert-file":         "secret/prom-client/" + corev1.TLSCertKey,
		"--prometheus-key-file":          "secret/prom-client/" + corev1.TLSPrivateKeyKey,
	} {
		path, ok := flags[flag]
		if !ok {
			t.Errorf("no %s in %v", flag, c.Args)
			continue
		}
		if got := source(path); got != want {
			t.Errorf("%s=%s lies in %q, want %s", flag, path, got, want)
		}
	}
	if flags["--kepler-version"] != "0.9" || flags["--prometheus-url"] != "https://thanos-querier.monitoring:9091" {
		t.Errorf("flags %v: want --kepler-version=0.9 and the URL", c.Args)
	}
	if _, ok := flags["--prometheus-insecure-skip-verify"]; ok {
		t.Errorf("--prometheus-insecure-skip-verify set without operator.prometheusAuth.insecureSkipVerify")
	}

	// The service account's own token, when asked for and no Secret is named.
	d = deployment(t, helmTemplate(t, "kcloud-operator", "kcloud-operator-system",
		"--set", "operator.prometheusURL=https://p", "--set", "operator.prometheusAuth.serviceAccountToken=true"), "operator")
	found := false
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		found = found || a == "--prometheus-bearer-token-file=/var/run/secrets/kubernetes.io/serviceaccount/token"
	}
	if !found {
		t.Errorf("serviceAccountToken: args %v, want the projected service-account token as the bearer token file", d.Spec.Template.Spec.Containers[0].Args)
	}
}
