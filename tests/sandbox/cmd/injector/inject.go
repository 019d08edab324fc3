package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Annotations and labels as Istio spells them (pkg/kube/inject, api/annotation).
const (
	annStatus         = "sidecar.istio.io/status"
	annInject         = "sidecar.istio.io/inject"
	annRev            = "istio.io/rev"
	annTemplates      = "inject.istio.io/templates"
	annNativeSidecar  = "sidecar.istio.io/nativeSidecar"
	annProxyImage     = "sidecar.istio.io/proxyImage"
	annProxyImageType = "sidecar.istio.io/proxyImageType"
	proxyName         = "istio-proxy"
	initName          = "istio-init"
)

type injector struct {
	client         kubernetes.Interface
	istioNamespace string
	// Caches of istio-system, so a pod creation costs no API call; a miss
	// falls back to the API, since a cache may lag behind a fresh install.
	configMaps     corelisters.ConfigMapNamespaceLister
	services       corelisters.ServiceNamespaceLister
	endpointSlices discoverylisters.EndpointSliceNamespaceLister
}

// startCaches fills the caches before the first request is served.
func (i *injector) startCaches(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(i.client, 10*time.Minute, informers.WithNamespace(i.istioNamespace))
	i.configMaps = factory.Core().V1().ConfigMaps().Lister().ConfigMaps(i.istioNamespace)
	i.services = factory.Core().V1().Services().Lister().Services(i.istioNamespace)
	i.endpointSlices = factory.Discovery().V1().EndpointSlices().Lister().EndpointSlices(i.istioNamespace)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
}

func (i *injector) service(ctx context.Context, name string) (*corev1.Service, error) {
	if svc, err := i.services.Get(name); err == nil {
		return svc, nil
	}
	return i.client.CoreV1().Services(i.istioNamespace).Get(ctx, name, metav1.GetOptions{})
}

func (i *injector) configMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	if cm, err := i.configMaps.Get(name); err == nil {
		return cm, nil
	}
	return i.client.CoreV1().ConfigMaps(i.istioNamespace).Get(ctx, name, metav1.GetOptions{})
}

func hasReadyEndpoint(slices []*discoveryv1.EndpointSlice) bool {
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

// proxyValues is the part of the injector ConfigMap's "values" JSON that
// decides the proxy image, as Istio's ProxyImage() and injection template
// read it, plus the mesh config's defaultConfig.image.
type proxyValues struct {
	Global struct {
		Hub     string `json:"hub"`
		Tag     any    `json:"tag"`
		Variant string `json:"variant"`
		Proxy   struct {
			Image string `json:"image"`
		} `json:"proxy"`
		ProxyInit struct {
			Image string `json:"image"`
		} `json:"proxy_init"`
	} `json:"global"`
	// meshImageType is the mesh config's defaultConfig.image.imageType,
	// nil when the mesh config has no image.
	meshImageType *string
}

// revisionValues reads hub and tag from the revision's own injector
// ConfigMap on every request, so replacing a control plane in place is seen
// as soon as the ConfigMap changes, as a new istiod would serve its version.
// The image type comes from its mesh config (ConfigMap istio[-<rev>]) when
// that sets one, as istiod's proxy config does.
func (i *injector) revisionValues(ctx context.Context, rev string) (*proxyValues, error) {
	name, meshName := "istio-sidecar-injector", "istio"
	if rev != "default" {
		name += "-" + rev
		meshName += "-" + rev
	}
	cm, err := i.configMap(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("no istiod for revision %q: configmap %s/%s: %w", rev, i.istioNamespace, name, err)
	}
	var v proxyValues
	if err := json.Unmarshal([]byte(cm.Data["values"]), &v); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: values: %w", i.istioNamespace, name, err)
	}
	if v.Global.Hub == "" || v.Global.Tag == nil {
		return nil, fmt.Errorf("configmap %s/%s: values lack global.hub or global.tag", i.istioNamespace, name)
	}
	if mesh, err := i.configMap(ctx, meshName); err == nil {
		var m struct {
			DefaultConfig struct {
				Image *struct {
					ImageType string `json:"imageType"`
				} `json:"image"`
			} `json:"defaultConfig"`
		}
		if err := yaml.Unmarshal([]byte(mesh.Data["mesh"]), &m); err != nil {
			return nil, fmt.Errorf("configmap %s/%s: mesh: %w", i.istioNamespace, meshName, err)
		}
		if m.DefaultConfig.Image != nil {
			v.meshImageType = &m.DefaultConfig.Image.ImageType
		}
	}
	return &v, nil
}

// image is what Istio's injection template writes for a container whose
// configured image is `configured` (global.proxy.image for istio-proxy,
// global.proxy_init.image for istio-init): the pod's
// sidecar.istio.io/proxyImage annotation, else `configured`, verbatim when it
// holds a "/"; else ProxyImage(): <hub>/<global.proxy.image or
// proxyv2>:<tag> with the image type (global.variant, overridden by the mesh
// config's, then by the sidecar.istio.io/proxyImageType annotation).
func (v *proxyValues) image(pod *corev1.Pod, configured string) string {
	if a, ok := pod.Annotations[annProxyImage]; ok {
		configured = a
	}
	if strings.Contains(configured, "/") {
		return configured
	}
	name := "proxyv2"
	if v.Global.Proxy.Image != "" {
		name = v.Global.Proxy.Image
	}
	imageType := v.Global.Variant
	if v.meshImageType != nil {
		imageType = *v.meshImageType
	}
	if t, ok := pod.Annotations[annProxyImageType]; ok {
		imageType = t
	}
	return fmt.Sprintf("%s/%s:%s", v.Global.Hub, name, withImageType(fmt.Sprint(v.Global.Tag), imageType))
}

// withImageType is Istio's updateImageTypeIfPresent: a known type already
// on the tag is replaced, "default" means none.
func withImageType(tag, imageType string) string {
	if imageType == "" {
		return tag
	}
	for _, known := range []string{"distroless", "debug"} {
		if strings.HasSuffix(tag, "-"+known) {
			tag = strings.TrimSuffix(tag, "-"+known)
			break
		}
	}
	if imageType == "default" {
		return tag
	}
	return tag + "-" + imageType
}

// serveTunnelled answers a webhook call the API server addressed to an istiod
// Service (see proxy.go), as that Service's istiod would.
func (i *injector) serveTunnelled(w http.ResponseWriter, r *http.Request) {
	namespace, service, _ := strings.Cut(serviceOf(r), "/")
	if namespace != i.istioNamespace {
		http.Error(w, fmt.Sprintf("no route to services in namespace %q", namespace), http.StatusServiceUnavailable)
		return
	}
	if err := i.serviceReachable(r.Context(), service); err != nil {
		// What the API server meets when kube-proxy has nowhere to send the
		// call: the webhook's failurePolicy decides.
		log.Printf("webhook call to %s: %v", service, err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	rev, err := i.revisionOfService(r.Context(), service)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/inject"):
		i.serveInject(w, r, rev)
	case strings.HasPrefix(r.URL.Path, "/validate"):
		serveValidate(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serviceReachable says whether a real cluster could route a call to the
// Service: it exists and has a ready endpoint (an istiod pod, here a KWOK one).
func (i *injector) serviceReachable(ctx context.Context, name string) error {
	if _, err := i.service(ctx, name); err != nil {
		return fmt.Errorf("service %s/%s: %w", i.istioNamespace, name, err)
	}
	selector := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})
	if cached, err := i.endpointSlices.List(selector); err == nil && hasReadyEndpoint(cached) {
		return nil
	}
	list, err := i.client.DiscoveryV1().EndpointSlices(i.istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return err
	}
	slices := make([]*discoveryv1.EndpointSlice, len(list.Items))
	for k := range list.Items {
		slices[k] = &list.Items[k]
	}
	if hasReadyEndpoint(slices) {
		return nil
	}
	return fmt.Errorf("service %s/%s has no ready endpoint", i.istioNamespace, name)
}

// revisionOfService names the istiod behind a Service as Istio names them:
// istiod (unrevisioned, revision "default"), istiod-<revision>, or a tag's
// istiod-revision-tag-<tag>, which carries its revision in istio.io/rev.
func (i *injector) revisionOfService(ctx context.Context, name string) (string, error) {
	switch {
	case name == "istiod":
		return "default", nil
	case strings.HasPrefix(name, "istiod-revision-tag-"):
		svc, err := i.service(ctx, name)
		if err != nil {
			return "", fmt.Errorf("service %s/%s: %w", i.istioNamespace, name, err)
		}
		if rev := svc.Labels["istio.io/rev"]; rev != "" {
			return rev, nil
		}
		return "", fmt.Errorf("service %s/%s has no istio.io/rev label", i.istioNamespace, name)
	case strings.HasPrefix(name, "istiod-"):
		return strings.TrimPrefix(name, "istiod-"), nil
	}
	return "", fmt.Errorf("no istiod behind service %q", name)
}

func (i *injector) serveInject(w http.ResponseWriter, r *http.Request, rev string) {
	review, ok := readReview(w, r)
	if !ok {
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	patch, err := i.inject(r.Context(), rev, review.Request)
	switch {
	case err != nil:
		// A failed call, so the webhook's failurePolicy decides, as when
		// istiod cannot render its template.
		log.Printf("inject %s: %v", rev, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	case patch != nil:
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	writeReview(w, resp)
}

// serveValidate answers Istio's validating webhooks: this sandbox does not
// check Istio config, it only has to be reachable.
func serveValidate(w http.ResponseWriter, r *http.Request) {
	review, ok := readReview(w, r)
	if !ok {
		return
	}
	writeReview(w, &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true})
}

func readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "expected an AdmissionReview", http.StatusBadRequest)
		return nil, false
	}
	return &review, true
}

func writeReview(w http.ResponseWriter, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// sidecarStatus mirrors Istio's SidecarInjectionStatus, field order included.
type sidecarStatus struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// inject returns a JSON patch, or nil when Istio would leave the pod alone.
func (i *injector) inject(ctx context.Context, rev string, req *admissionv1.AdmissionRequest) ([]byte, error) {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	// Istio's injectRequired: never the system namespaces, host-network pods,
	// pods opting out, or pods already injected.
	if ns == metav1.NamespaceSystem || ns == metav1.NamespacePublic || pod.Spec.HostNetwork ||
		pod.Annotations[annStatus] != "" || strings.EqualFold(pod.Annotations[annInject], "false") {
		return nil, nil
	}
	values, err := i.revisionValues(ctx, rev)
	if err != nil {
		return nil, err
	}
	image := values.image(&pod, values.Global.Proxy.Image)
	initImage := values.image(&pod, values.Global.ProxyInit.Image)
	gateway := pod.Annotations[annTemplates] == "gateway"
	native := pod.Annotations[annNativeSidecar] == "true" && !gateway
	appContainers := []string{}
	for _, c := range pod.Spec.Containers {
		if c.Name != proxyName {
			appContainers = append(appContainers, c.Name)
		}
	}

	proxy := proxyContainer(rev, image, ns, i.istioNamespace, workloadName(&pod), appContainers)
	volumes := proxyVolumes()
	status := sidecarStatus{Revision: rev}
	for _, v := range volumes {
		status.Volumes = append(status.Volumes, v.Name)
	}

	initContainers := append([]corev1.Container{}, pod.Spec.InitContainers...)
	containers := append([]corev1.Container{}, pod.Spec.Containers...)
	switch {
	case gateway:
		// The gateway template fills in the pod's own istio-proxy container
		// (image "auto") and adds no init container.
		found := false
		for k := range containers {
			if containers[k].Name == proxyName {
				merged := proxy
				merged.Ports = append(containers[k].Ports, proxy.Ports...)
				merged.Env = append(proxy.Env, containers[k].Env...)
				merged.VolumeMounts = append(proxy.VolumeMounts, containers[k].VolumeMounts...)
				if containers[k].Resources.Requests != nil || containers[k].Resources.Limits != nil {
					merged.Resources = containers[k].Resources
				}
				containers[k], found = merged, true
			}
		}
		if !found {
			containers = append(containers, proxy)
		}
		status.Containers = []string{proxyName}
	case native:
		proxy.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		initContainers = append(initContainers, initContainer(initImage), proxy)
		status.InitContainers = []string{initName, proxyName}
	default:
		initContainers = append(initContainers, initContainer(initImage))
		containers = append(containers, proxy)
		status.InitContainers = []string{initName}
		status.Containers = []string{proxyName}
	}
	statusJSON, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}

	labels := copyMap(pod.Labels)
	if !gateway {
		labels["security.istio.io/tlsMode"] = firstOf(pod.Labels["security.istio.io/tlsMode"], "istio")
	}
	labels["service.istio.io/canonical-name"] = canonicalName(&pod)
	labels["service.istio.io/canonical-revision"] = firstOf(pod.Labels["service.istio.io/canonical-revision"],
		pod.Labels["app.kubernetes.io/version"], pod.Labels["version"], "latest")

	annotations := copyMap(pod.Annotations)
	annotations[annRev] = rev
	annotations[annStatus] = string(statusJSON)
	if len(appContainers) > 0 {
		if _, ok := annotations["kubectl.kubernetes.io/default-logs-container"]; !ok {
			annotations["kubectl.kubernetes.io/default-logs-container"] = appContainers[0]
		}
		if _, ok := annotations["kubectl.kubernetes.io/default-container"]; !ok {
			annotations["kubectl.kubernetes.io/default-container"] = appContainers[0]
		}
	}
	annotations["prometheus.io/path"] = firstOf(pod.Annotations["prometheus.io/path"], "/stats/prometheus")
	annotations["prometheus.io/port"] = firstOf(pod.Annotations["prometheus.io/port"], "15020")
	annotations["prometheus.io/scrape"] = firstOf(pod.Annotations["prometheus.io/scrape"], "true")

	// "add" replaces a member that already exists (RFC 6902), so whole
	// fields are written without diffing.
	ops := []patchOp{
		{Op: "add", Path: "/metadata/labels", Value: labels},
		{Op: "add", Path: "/metadata/annotations", Value: annotations},
		{Op: "add", Path: "/spec/containers", Value: containers},
		{Op: "add", Path: "/spec/volumes", Value: append(append([]corev1.Volume{}, pod.Spec.Volumes...), volumes...)},
	}
	if len(initContainers) > 0 {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/initContainers", Value: initContainers})
	}
	return json.Marshal(ops)
}

func initContainer(image string) corev1.Container {
	return corev1.Container{
		Name:  initName,
		Image: image,
		Args: []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
			"-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"},
		Resources: proxyResources(),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			Privileged:             ptr.To(false),
			ReadOnlyRootFilesystem: ptr.To(false),
			RunAsGroup:             ptr.To[int64](0),
			RunAsNonRoot:           ptr.To(false),
			RunAsUser:              ptr.To[int64](0),
		},
	}
}

func proxyResources() corev1.ResourceRequirements {
	// The demo profile's global.proxy.resources.
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("40Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
}

func proxyContainer(rev, image, ns, istioNamespace, workload string, appContainers []string) corev1.Container {
	caHost := "istiod"
	if rev != "default" {
		caHost += "-" + rev
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	return corev1.Container{
		Name:  proxyName,
		Image: image,
		Args: []string{"proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
			"--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"},
		Ports: []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "PILOT_CERT_PROVIDER", Value: "istiod"},
			{Name: "CA_ADDR", Value: fmt.Sprintf("%s.%s.svc:15012", caHost, istioNamespace)},
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "INSTANCE_IP", ValueFrom: field("status.podIP")},
			{Name: "SERVICE_ACCOUNT", ValueFrom: field("spec.serviceAccountName")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
			{Name: "ISTIO_CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "PROXY_CONFIG", Value: "{}\n"},
			{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(appContainers, ",")},
			{Name: "ISTIO_META_CLUSTER_ID", Value: "Kubernetes"},
			{Name: "ISTIO_META_NODE_NAME", ValueFrom: field("spec.nodeName")},
			{Name: "ISTIO_META_INTERCEPTION_MODE", Value: "REDIRECT"},
			{Name: "ISTIO_META_WORKLOAD_NAME", Value: workload},
			{Name: "ISTIO_META_OWNER", Value: fmt.Sprintf("kubernetes://apis/apps/v1/namespaces/%s/deployments/%s", ns, workload)},
			{Name: "ISTIO_META_MESH_ID", Value: "cluster.local"},
			{Name: "TRUST_DOMAIN", Value: "cluster.local"},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(15021)}},
			PeriodSeconds:    15,
			TimeoutSeconds:   3,
			FailureThreshold: 4,
		},
		Resources: proxyResources(),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			Privileged:               ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsGroup:               ptr.To[int64](1337),
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](1337),
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
			{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
			{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
			{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"},
			{Name: "istio-data", MountPath: "/var/lib/istio/data"},
			{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
			{Name: "istio-token", MountPath: "/var/run/secrets/tokens"},
			{Name: "istio-podinfo", MountPath: "/etc/istio/pod"},
		},
	}
}

func proxyVolumes() []corev1.Volume {
	empty := func(name string, medium corev1.StorageMedium) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}}
	}
	return []corev1.Volume{
		empty("workload-socket", ""),
		empty("credential-socket", ""),
		empty("workload-certs", ""),
		empty("istio-envoy", corev1.StorageMediumMemory),
		empty("istio-data", ""),
		{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
		}}}},
		{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "istio-ca", ExpirationSeconds: ptr.To[int64](43200), Path: "istio-token"}},
		}}}},
		{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-root-cert"},
		}}},
	}
}

// workloadName guesses the Deployment from the ReplicaSet-made generateName,
// as Istio's GetDeployMetaFromPod does.
func workloadName(pod *corev1.Pod) string {
	name := pod.Name
	if name == "" {
		name = strings.TrimSuffix(pod.GenerateName, "-")
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			name = ref.Name
			if ref.Kind == "ReplicaSet" {
				if hash := pod.Labels["pod-template-hash"]; hash != "" {
					name = strings.TrimSuffix(name, "-"+hash)
				}
			}
		}
	}
	return name
}

func canonicalName(pod *corev1.Pod) string {
	n := firstOf(pod.Labels["service.istio.io/canonical-name"], pod.Labels["app.kubernetes.io/name"], pod.Labels["app"], workloadName(pod))
	if len(n) > 63 {
		n = n[:63]
	}
	return strings.TrimSuffix(n, "-")
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}
