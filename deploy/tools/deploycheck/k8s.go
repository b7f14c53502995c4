package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// scaledObject is KEDA's keda.sh/v1alpha1 ScaledObject (the fields Vigil may use); decoding is
// strict, so a misspelt field fails the check.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Advanced        *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor (subset).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one kustomization's output, decoded.
type rendered struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
	pdbs        []policyv1.PodDisruptionBudget
	scaled      []scaledObject
	monitors    []serviceMonitor
}

// checkKustomizations renders each directory with the kustomize API and checks the result.
func checkKustomizations(dirs []string, outFile string, out io.Writer) error {
	var all bytes.Buffer
	var probs problems
	for _, dir := range dirs {
		yml, err := renderKustomization(dir)
		if err != nil {
			probs.addf("%s: %v", dir, err)
			continue
		}
		fmt.Fprintf(&all, "# --- %s\n%s", dir, yml)
		r, n, errs := decodeManifests(yml)
		for _, e := range errs {
			probs.addf("%s: %v", dir, e)
		}
		before := len(probs)
		checkRendered(r, &probs)
		for i := before; i < len(probs); i++ {
			probs[i] = dir + ": " + probs[i]
		}
		fmt.Fprintf(out, "kustomize %s: %d objects rendered and decoded strictly (%d Deployments, %d ScaledObjects)\n",
			dir, n, len(r.deployments), len(r.scaled))
	}
	if outFile != "" {
		if err := os.WriteFile(outFile, all.Bytes(), 0o644); err != nil {
			probs.addf("write %s: %v", outFile, err)
		}
	}
	return probs.err("kubernetes")
}

func renderKustomization(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	b, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize yaml: %w", err)
	}
	return b, nil
}

// decodeManifests splits multi-document YAML and decodes each object strictly into its type.
func decodeManifests(b []byte) (rendered, int, []error) {
	var r rendered
	var errs []error
	n := 0
	for _, doc := range splitDocs(b) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			errs = append(errs, fmt.Errorf("decode: %w", err))
			continue
		}
		n++
		var err error
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			var o appsv1.Deployment
			err = yaml.UnmarshalStrict(doc, &o)
			r.deployments = append(r.deployments, o)
		case "v1/Service":
			var o corev1.Service
			err = yaml.UnmarshalStrict(doc, &o)
			r.services = append(r.services, o)
		case "v1/ConfigMap":
			var o corev1.ConfigMap
			err = yaml.UnmarshalStrict(doc, &o)
			r.configMaps = append(r.configMaps, o)
		case "v1/Secret":
			var o corev1.Secret
			err = yaml.UnmarshalStrict(doc, &o)
			r.secrets = append(r.secrets, o)
		case "v1/Namespace":
			err = yaml.UnmarshalStrict(doc, &corev1.Namespace{})
		case "policy/v1/PodDisruptionBudget":
			var o policyv1.PodDisruptionBudget
			err = yaml.UnmarshalStrict(doc, &o)
			r.pdbs = append(r.pdbs, o)
		case "keda.sh/v1alpha1/ScaledObject":
			var o scaledObject
			err = yaml.UnmarshalStrict(doc, &o)
			r.scaled = append(r.scaled, o)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			var o serviceMonitor
			err = yaml.UnmarshalStrict(doc, &o)
			r.monitors = append(r.monitors, o)
		default:
			err = fmt.Errorf("no schema known for this kind")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err))
		}
	}
	return r, n, errs
}

func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// secretLike names environment variables that must come from a Secret, never a literal value.
var secretLike = regexp.MustCompile(`(?i)(PASSWORD|SECRET|API_KEY|TOKEN|CREDENTIALS?)$`)

// checkRendered applies Vigil's operating rules to one rendered kustomization.
func checkRendered(r rendered, probs *problems) {
	config := map[string]string{}
	cmNames := map[string]bool{}
	for _, cm := range r.configMaps {
		cmNames[cm.Name] = true
		if cm.Labels["app.kubernetes.io/part-of"] == "vigil" {
			for k, v := range cm.Data {
				config[k] = v
				if secretLike.MatchString(k) && v != "" {
					probs.addf("ConfigMap %s: %s looks like a credential; use the Secret", cm.Name, k)
				}
			}
		}
	}
	secretKeys := map[string]map[string]bool{}
	for _, s := range r.secrets {
		keys := map[string]bool{}
		for k := range s.Data {
			keys[k] = true
		}
		for k := range s.StringData {
			keys[k] = true
		}
		secretKeys[s.Name] = keys
	}
	partitions, _ := strconv.Atoi(config["VIGIL_KAFKA_PARTITIONS"])
	for _, d := range r.deployments {
		checkPodSecrets(d, cmNames, secretKeys, probs)
		if d.Labels["app.kubernetes.io/part-of"] != "vigil" || !strings.HasPrefix(d.Name, "vigil-") {
			continue
		}
		svc := strings.TrimPrefix(d.Name, "vigil-")
		checkVigilDeployment(d, svc, probs)
		podLabels := labels.Set(d.Spec.Template.Labels)
		if !hasService(r.services, podLabels) {
			probs.addf("Deployment %s: no Service with an ops port selects its pods", d.Name)
		}
		if !hasPDB(r.pdbs, podLabels) {
			probs.addf("Deployment %s: no PodDisruptionBudget selects its pods", d.Name)
		}
		checkScaledObject(r.scaled, d, config, partitions, probs)
	}
	for _, m := range r.monitors {
		if len(m.Spec.Endpoints) == 0 || m.Spec.Endpoints[0].Port != "ops" {
			probs.addf("ServiceMonitor %s: must scrape the ops port", m.Name)
		}
	}
}

func checkPodSecrets(d appsv1.Deployment, cmNames map[string]bool, secretKeys map[string]map[string]bool, probs *problems) {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && !cmNames[ef.ConfigMapRef.Name] {
				probs.addf("Deployment %s/%s: envFrom ConfigMap %s is not rendered", d.Name, c.Name, ef.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if secretLike.MatchString(e.Name) && e.Value != "" {
				probs.addf("Deployment %s/%s: %s has an inline value; use secretKeyRef", d.Name, c.Name, e.Name)
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			keys, rendered := secretKeys[ref.Name]
			// The base leaves the Secret to the operator; only a rendered Secret can be checked.
			if rendered && !keys[ref.Key] && !optional {
				probs.addf("Deployment %s/%s: %s needs key %s in Secret %s", d.Name, c.Name, e.Name, ref.Key, ref.Name)
			}
		}
	}
	for _, arg := range d.Spec.Template.Spec.Containers {
		for _, a := range append(append([]string{}, arg.Command...), arg.Args...) {
			if strings.Contains(strings.ToLower(a), "password=") {
				probs.addf("Deployment %s/%s: credential in command line", d.Name, arg.Name)
			}
		}
	}
}

func checkVigilDeployment(d appsv1.Deployment, svc string, probs *problems) {
	spec := d.Spec.Template.Spec
	var main *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == svc {
			main = &spec.Containers[i]
		}
	}
	if main == nil {
		probs.addf("Deployment %s: no container named %s", d.Name, svc)
		return
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		probs.addf("Deployment %s: pod securityContext.runAsNonRoot must be true", d.Name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			probs.addf("Deployment %s/%s: securityContext missing", d.Name, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			probs.addf("Deployment %s/%s: readOnlyRootFilesystem must be true", d.Name, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			probs.addf("Deployment %s/%s: allowPrivilegeEscalation must be false", d.Name, c.Name)
		case sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 || sc.Capabilities.Drop[0] != "ALL":
			probs.addf("Deployment %s/%s: capabilities must drop ALL", d.Name, c.Name)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			probs.addf("Deployment %s/%s: cpu and memory requests required", d.Name, c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() {
			probs.addf("Deployment %s/%s: memory limit required", d.Name, c.Name)
		}
	}
	opsPort := false
	for _, p := range main.Ports {
		opsPort = opsPort || p.Name == "ops"
	}
	if !opsPort {
		probs.addf("Deployment %s: container port named ops missing", d.Name)
	}
	checkProbe(d.Name, "liveness", main.LivenessProbe, "/healthz", probs)
	checkProbe(d.Name, "readiness", main.ReadinessProbe, "/readyz", probs)
	checkProbe(d.Name, "startup", main.StartupProbe, "/healthz", probs)
	group := ""
	for _, e := range main.Env {
		if e.Name == "VIGIL_OPS_ADDR" && !strings.HasPrefix(e.Value, "0.0.0.0:") {
			probs.addf("Deployment %s: VIGIL_OPS_ADDR %q must listen on 0.0.0.0 to be probed", d.Name, e.Value)
		}
		if e.Name == "VIGIL_GROUP" {
			group = e.Value
		}
	}
	if group != "vigil-"+svc {
		probs.addf("Deployment %s: VIGIL_GROUP = %q, want vigil-%s", d.Name, group, svc)
	}
	if tg := spec.TerminationGracePeriodSeconds; tg == nil || *tg < 35 {
		probs.addf("Deployment %s: terminationGracePeriodSeconds must exceed the 30s shutdown timeout", d.Name)
	}
}

func checkProbe(name, kind string, p *corev1.Probe, path string, probs *problems) {
	if p == nil || p.HTTPGet == nil {
		probs.addf("Deployment %s: %s probe must be an httpGet", name, kind)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "ops" {
		probs.addf("Deployment %s: %s probe must GET %s on port ops (got %s on %s)", name, kind, path, p.HTTPGet.Path, p.HTTPGet.Port.String())
	}
}

func hasService(svcs []corev1.Service, pod labels.Set) bool {
	for _, s := range svcs {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Name == "ops" {
				return true
			}
		}
	}
	return false
}

func hasPDB(pdbs []policyv1.PodDisruptionBudget, pod labels.Set) bool {
	for _, p := range pdbs {
		if p.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(pod) {
			return true
		}
	}
	return false
}

func checkScaledObject(all []scaledObject, d appsv1.Deployment, config map[string]string, partitions int, probs *problems) {
	var so *scaledObject
	for i := range all {
		if all[i].Spec.ScaleTargetRef.Name == d.Name {
			so = &all[i]
		}
	}
	if so == nil {
		probs.addf("Deployment %s: no KEDA ScaledObject targets it", d.Name)
		return
	}
	s := so.Spec
	if s.MinReplicaCount == nil || *s.MinReplicaCount < 1 {
		probs.addf("ScaledObject %s: minReplicaCount must be >= 1", so.Name)
	}
	if s.MaxReplicaCount == nil || (partitions > 0 && int(*s.MaxReplicaCount) > partitions) {
		probs.addf("ScaledObject %s: maxReplicaCount must be set and <= VIGIL_KAFKA_PARTITIONS (%d)", so.Name, partitions)
	}
	if s.MinReplicaCount != nil && s.MaxReplicaCount != nil && *s.MaxReplicaCount < *s.MinReplicaCount {
		probs.addf("ScaledObject %s: maxReplicaCount < minReplicaCount", so.Name)
	}
	topics := map[string]bool{}
	for k, v := range config {
		if strings.HasPrefix(k, "VIGIL_TOPIC_") {
			topics[v] = true
		}
	}
	kafka := 0
	for _, t := range s.Triggers {
		if t.Type != "kafka" {
			continue
		}
		kafka++
		m := t.Metadata
		if m["consumerGroup"] != d.Name {
			probs.addf("ScaledObject %s: consumerGroup %q, want %s", so.Name, m["consumerGroup"], d.Name)
		}
		if m["bootstrapServers"] == "" || (config["VIGIL_KAFKA_BROKERS"] != "" && m["bootstrapServers"] != config["VIGIL_KAFKA_BROKERS"]) {
			probs.addf("ScaledObject %s: bootstrapServers %q differs from VIGIL_KAFKA_BROKERS %q", so.Name, m["bootstrapServers"], config["VIGIL_KAFKA_BROKERS"])
		}
		if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n < 1 {
			probs.addf("ScaledObject %s: lagThreshold must be a positive integer", so.Name)
		}
		if tp := m["topic"]; tp != "" && len(topics) > 0 && !topics[tp] {
			probs.addf("ScaledObject %s: topic %q is none of the configured VIGIL_TOPIC_* topics", so.Name, tp)
		}
	}
	if kafka == 0 {
		probs.addf("ScaledObject %s: needs a kafka trigger", so.Name)
	}
}
