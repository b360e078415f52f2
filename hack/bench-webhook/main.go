// Command bench-webhook measures the admission webhooks' latency on the local cluster.
//
// In-process: AdmissionReviews for pods covered by an optimizer are posted straight to the
// operator's webhook server over TLS, open-loop at --rate per second, and the latency p99 is compared
// with a no-op webhook served by this process over the same kind of TLS connection with the same
// payloads (the baseline). Through the apiserver: pods are created through kube-apiserver, which
// calls the mutating and validating pod webhooks; the p99 of each webhook comes from the
// apiserver's own apiserver_admission_webhook_admission_duration_seconds histogram, and the pod
// create latency is compared with creates in a namespace the webhooks skip. The last line is
// `webhook_p99_ms=X apiserver_p99_ms=Y`.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/internal/webhook/certs"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
	"kcloud.io/optimizer/pkg/kube"
)

type config struct {
	binDir, operatorBin string
	rate                int
	duration            time.Duration
	apiRate             int
	apiPods             int
}

func main() {
	var c config
	flag.StringVar(&c.binDir, "bin-dir", "bin/controlplane/current", "control-plane binaries")
	flag.StringVar(&c.operatorBin, "operator", "bin/kcloud-operator", "kcloud-operator binary")
	flag.IntVar(&c.rate, "rate", 500, "in-process AdmissionReviews per second")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "in-process measurement per server")
	flag.IntVar(&c.apiRate, "api-rate", 50, "pod creates per second through the apiserver")
	flag.IntVar(&c.apiPods, "api-pods", 1000, "pods created through the apiserver, per namespace")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-webhook:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(c config) error {
	ctx := context.Background()
	cl, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: c.binDir, Profile: "default", Log: logf,
		Operator: c.operatorBin, Webhooks: true,
		Install: install.ApplyCRDs})
	if err != nil {
		return err
	}
	defer stop()
	cfg := rest.CopyConfig(cl.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	k, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	const ns = "bench-webhook"
	if err := fixtures(ctx, k, ns); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // the operator's cache sees the optimizers

	caPool, err := webhookCA(ctx, k)
	if err != nil {
		return err
	}
	reviews := reviewBodies(ns, 200)
	logf("in-process: %d AdmissionReviews/s for %s to the operator's mutating pod webhook at %s", c.rate, c.duration, cl.WebhookURL)
	ours, err := load(cl.WebhookURL+"/mutate--v1-pod", caPool, "", reviews, c.rate, c.duration)
	if err != nil {
		return err
	}
	base, baseCA, baseName, err := noopServer()
	if err != nil {
		return err
	}
	logf("baseline: the same load on a no-op webhook in this process at %s", base)
	baseline, err := load(base, baseCA, baseName, reviews, c.rate, c.duration)
	if err != nil {
		return err
	}
	validate, err := load(cl.WebhookURL+"/validate--v1-pod", caPool, "", reviews, c.rate, c.duration/2)
	if err != nil {
		return err
	}

	logf("through the apiserver: %d pod creates at %d/s in %s (webhooks) and in %s (skipped by the webhooks)", c.apiPods, c.apiRate, ns, devcluster.OperatorNamespace)
	before, err := admissionHistograms(ctx, cs)
	if err != nil {
		return err
	}
	withHooks, err := createPods(ctx, k, ns, "api", c.apiPods, c.apiRate)
	if err != nil {
		return err
	}
	after, err := admissionHistograms(ctx, cs)
	if err != nil {
		return err
	}
	without, err := createPods(ctx, k, devcluster.OperatorNamespace, "api", c.apiPods, c.apiRate)
	if err != nil {
		return err
	}

	fmt.Printf("\n%-44s %8s %8s %8s %8s\n", "in-process (direct HTTPS)", "n", "p50 ms", "p99 ms", "errors")
	row := func(name string, r result) {
		fmt.Printf("%-44s %8d %8.2f %8.2f %8d\n", name, len(r.lat), r.pct(0.5), r.pct(0.99), r.errors)
	}
	row("kcloud mutating pod webhook", ours)
	row("kcloud validating pod webhook", validate)
	row("no-op webhook (baseline)", baseline)
	fmt.Printf("p99 ratio ours/no-op: %.2f\n", ours.pct(0.99)/baseline.pct(0.99))

	fmt.Printf("\n%-44s %8s %8s\n", "through kube-apiserver", "n", "p99 ms")
	apiP99 := 0.0
	for _, name := range []string{"mpod.kcloud.io", "vpod.kcloud.io"} {
		h := after[name].minus(before[name])
		p := h.quantile(0.99) * 1000
		apiP99 = math.Max(apiP99, p)
		fmt.Printf("%-44s %8.0f %8.2f   (bucket upper bound, apiserver_admission_webhook_admission_duration_seconds)\n", "webhook "+name, h.count, p)
	}
	row2 := func(name string, r result) {
		fmt.Printf("%-44s %8d %8.2f\n", name, len(r.lat), r.pct(0.99))
	}
	row2("pod create, webhooks called", withHooks)
	row2("pod create, webhooks skipped (baseline)", without)
	fmt.Printf("pod create p99 ratio with/without webhooks: %.2f\n", withHooks.pct(0.99)/without.pct(0.99))
	if ours.errors+validate.errors+withHooks.errors > 0 {
		return fmt.Errorf("%d in-process and %d apiserver errors", ours.errors+validate.errors, withHooks.errors)
	}
	fmt.Printf("webhook_p99_ms=%.2f apiserver_p99_ms=%.2f\n", math.Max(ours.pct(0.99), validate.pct(0.99)), apiP99)
	return nil
}

// fixtures: optimizers the pods belong to, and policies the validator checks (none refuses).
func fixtures(ctx context.Context, k client.Client, ns string) error {
	if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("wo-%02d", i), Namespace: ns},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing,
				Resources:        kcloudv1alpha1.WorkloadResources{GPU: 1},
				CostConstraints:  &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(100.0), PreferSpot: i%2 == 0},
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{PreferGreen: i%3 == 0},
				Selector:         &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%02d", i)}}}}
		if err := k.Create(ctx, wo); err != nil {
			return err
		}
	}
	for _, o := range []client.Object{
		&kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-budget"}, Spec: kcloudv1alpha1.CostPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, MaxCostPerHour: ptr.To(1e6),
			Budget: &kcloudv1alpha1.CostBudget{Amount: 1e6}, Enforcement: kcloudv1alpha1.EnforcementDeny}},
		&kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-power"}, Spec: kcloudv1alpha1.PowerPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, MaxPowerWatts: ptr.To(1e7), Enforcement: kcloudv1alpha1.EnforcementDeny}},
	} {
		if err := k.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func benchPod(ns, name string, i int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": fmt.Sprintf("app-%02d", i%50)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "vllm/vllm-openai:v0.6",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
			// Pinned to a node that does not exist: the benchmark measures admission, not scheduling.
			NodeSelector: map[string]string{kube.LabelOptimizer: "bench-nowhere"}}}
}

// reviewBodies are AdmissionReview requests for pods of the optimizers.
func reviewBodies(ns string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		raw, _ := json.Marshal(benchPod(ns, fmt.Sprintf("review-%d", i), i))
		review := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: types.UID(fmt.Sprintf("uid-%d", i)), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Operation: admissionv1.Create,
				Object: runtime.RawExtension{Raw: raw}}}
		out[i], _ = json.Marshal(review)
	}
	return out
}

// webhookCA reads the CA bundle the operator published in its certificate Secret.
func webhookCA(ctx context.Context, k client.Client) (*x509.CertPool, error) {
	sec := &corev1.Secret{}
	if err := k.Get(ctx, client.ObjectKey{Namespace: devcluster.OperatorNamespace, Name: "kcloud-webhook-certs"}, sec); err != nil {
		return nil, fmt.Errorf("reading the webhook certificate Secret: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sec.Data[certs.CABundleKey]) {
		return nil, fmt.Errorf("no CA in the webhook certificate Secret")
	}
	return pool, nil
}

type result struct {
	lat    []time.Duration
	errors int
}

func (r result) pct(q float64) float64 {
	if len(r.lat) == 0 {
		return math.NaN()
	}
	s := append([]time.Duration(nil), r.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// load posts the bodies open-loop at rate per second for d over keep-alive TLS connections, as an
// apiserver would, and records each response's latency from its scheduled send time.
func load(url string, ca *x509.CertPool, serverName string, bodies [][]byte, rate int, d time.Duration) (result, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca, ServerName: serverName}, MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	// Warm the connections and caches.
	for i := 0; i < 50; i++ {
		if _, err := post(hc, url, bodies[i%len(bodies)]); err != nil {
			return result{}, fmt.Errorf("warming %s: %w", url, err)
		}
	}
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			ok, err := post(hc, url, bodies[i%len(bodies)])
			lat := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !ok {
				res.errors++
				return
			}
			res.lat = append(res.lat, lat)
		}(i, due)
	}
	wg.Wait()
	return res, nil
}

func post(hc *http.Client, url string, body []byte) (bool, error) {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK && review.Response != nil && review.Response.Allowed, nil
}

// noopServer serves an always-allowing webhook over TLS with a certificate of its own.
func noopServer() (url string, ca *x509.CertPool, serverName string, err error) {
	cert, pool, err := selfSigned()
	if err != nil {
		return "", nil, "", err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "", nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &review)
		uid := types.UID("")
		if review.Request != nil {
			uid = review.Request.UID
		}
		review.Request = nil
		review.Response = &admissionv1.AdmissionResponse{UID: uid, Allowed: true}
		_ = json.NewEncoder(w).Encode(review)
	})
	go func() { _ = http.Serve(ln, mux) }()
	return "https://" + ln.Addr().String() + "/", pool, "127.0.0.1", nil
}

// createPods creates n pods at rate per second with 32 clients and records each create's latency.
func createPods(ctx context.Context, k client.Client, ns, prefix string, n, rate int) (result, error) {
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			t0 := time.Now()
			err := k.Create(ctx, benchPod(ns, fmt.Sprintf("%s-%05d", prefix, i), i))
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errors++
				if res.errors <= 3 {
					logf("create: %v", err)
				}
				return
			}
			res.lat = append(res.lat, lat)
		}(i)
	}
	wg.Wait()
	return res, nil
}

// histogram is one webhook's admission-duration histogram: cumulative counts by upper bound.
type histogram struct {
	bounds []float64
	counts []float64
	count  float64
}

func (h histogram) minus(o histogram) histogram {
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), count: h.count - o.count}
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(o.counts) {
			out.counts[i] -= o.counts[i]
		}
	}
	return out
}

// quantile is the upper bound of the bucket holding the q-quantile, in seconds.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 {
		return math.NaN()
	}
	for i, c := range h.counts {
		if c >= q*h.count {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}

// admissionHistograms scrapes the apiserver's webhook admission-duration histograms, summed over
// operations and outcomes, per webhook name.
func admissionHistograms(ctx context.Context, cs kubernetes.Interface) (map[string]histogram, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scraping the apiserver: %w", err)
	}
	type key struct {
		name string
		le   float64
	}
	sums := map[key]float64{}
	counts := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_") {
			continue
		}
		name := label(line, "name")
		fields := strings.Fields(line)
		var v float64
		if _, err := fmt.Sscan(fields[len(fields)-1], &v); err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_bucket"):
			le := math.Inf(1)
			if s := label(line, "le"); s != "+Inf" {
				_, _ = fmt.Sscan(s, &le)
			}
			sums[key{name, le}] += v
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_count"):
			counts[name] += v
		}
	}
	out := map[string]histogram{}
	for k, v := range sums {
		h := out[k.name]
		h.bounds = append(h.bounds, k.le)
		h.counts = append(h.counts, v)
		out[k.name] = h
	}
	for name, h := range out {
		idx := make([]int, len(h.bounds))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return h.bounds[idx[a]] < h.bounds[idx[b]] })
		sorted := histogram{count: counts[name]}
		for _, i := range idx {
			sorted.bounds = append(sorted.bounds, h.bounds[i])
			sorted.counts = append(sorted.counts, h.counts[i])
		}
		out[name] = sorted
	}
	return out, nil
}

func label(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	return rest[:strings.Index(rest, `"`)]
}

// selfSigned is a throwaway certificate for 127.0.0.1, for the baseline server.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-noop"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
