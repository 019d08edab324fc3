// Renders Gateway API gateways and waypoints with istiod's own deployment
// controller, for the sandbox's gateway-api fixtures. Not part of the sandbox
// module (the directory starts with "_"): generate-gateways copies it into
// pilot/pkg/config/kube/gateway of an Istio source tree and runs
//
//	SANDBOX_RENDER_DIR=<dir> go test -run TestSandboxRender ./pilot/pkg/config/kube/gateway
//
// <dir> holds what istiod reads from its ConfigMaps (injector-config.yaml, the
// `config` key of istio-sidecar-injector; injector-values.json, its `values`
// key; mesh.yaml, the `mesh` key of istio), revision.txt (istiod's REVISION)
// and gateways.yaml (the Gateway objects). The test writes rendered.yaml:
// the GatewayClasses istiod's class controller creates, then what the
// deployment controller server-side applies for each Gateway (ServiceAccount,
// Service, Deployment), exactly as it sends them. Each Gateway's uid is
// "uid-of-<namespace>/<name>", for the caller to replace.
package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubeVersion "k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	k8sbeta "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/inject"
	"istio.io/istio/pkg/kube/kclient"
	"istio.io/istio/pkg/revisions"
	"istio.io/istio/pkg/test"
)

func TestSandboxRender(t *testing.T) {
	dir := os.Getenv("SANDBOX_RENDER_DIR")
	if dir == "" {
		t.Skip("SANDBOX_RENDER_DIR is not set")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// What istiod builds from its ConfigMaps (pkg/kube/inject watcher and
	// Webhook.GetConfig, pkg/config/mesh).
	injectConfig, err := inject.UnmarshalConfig([]byte(read("injector-config.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	values, err := inject.NewValuesConfig(read("injector-values.json"))
	if err != nil {
		t.Fatal(err)
	}
	meshConfig, err := mesh.ApplyMeshConfigDefaults(read("mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	webhookConfig := func() inject.WebhookConfig {
		return inject.WebhookConfig{Templates: injectConfig.Templates, Values: values, MeshConfig: meshConfig}
	}
	revision := strings.TrimSpace(read("revision.txt"))

	var gateways []*k8sbeta.Gateway
	objects := []runtime.Object{}
	seen := map[string]bool{}
	for _, doc := range strings.Split(read("gateways.yaml"), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		gw := &k8sbeta.Gateway{}
		if err := yaml.UnmarshalStrict([]byte(doc), gw); err != nil {
			t.Fatal(err)
		}
		gw.UID = types.UID("uid-of-" + gw.Namespace + "/" + gw.Name)
		gateways = append(gateways, gw)
		if !seen[gw.Namespace] {
			seen[gw.Namespace] = true
			objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gw.Namespace}})
		}
	}

	client := kube.NewFakeClient(objects...)
	client.Kube().Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &kubeVersion.Info{Major: "1", Minor: "35"}
	for _, gw := range gateways {
		if _, err := kclient.NewWriteClient[*k8sbeta.Gateway](client).Create(gw); err != nil {
			t.Fatal(err)
		}
	}
	stop := test.NewStop(t)
	env := model.NewEnvironment()
	env.Watcher = meshwatcher.NewTestWatcher(meshConfig)
	tw := revisions.NewTagWatcher(client, revision, "istio-system")
	go tw.Run(stop)
	classes := NewClassController(client)
	classList := kclient.New[*k8sbeta.GatewayClass](client)
	d := NewDeploymentController(client, cluster.ID(features.ClusterName), env, webhookConfig, func(fn func()) {}, tw, revision, "istio-system")

	var mu sync.Mutex
	applied := map[string]string{} // kind/namespace/name -> YAML, the last apply wins
	var order []string
	d.patcher = func(g schema.GroupVersionResource, name string, namespace string, data []byte, subresources ...string) error {
		if g.Resource == "gateways" {
			return nil // status and the controller-version annotation
		}
		b, err := yaml.JSONToYAML(data)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		key := g.Resource + "/" + namespace + "/" + name
		if _, ok := applied[key]; !ok {
			order = append(order, key)
		}
		applied[key] = string(b)
		return nil
	}
	client.RunAndWait(stop)
	go classes.Run(stop)
	go d.Run(stop)
	kube.WaitForCacheSync("sandbox-render", stop, d.queue.HasSynced)

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for k := range applied {
			if strings.HasPrefix(k, "deployments/") {
				n++
			}
		}
		mu.Unlock()
		if n == len(gateways) && len(classList.List(metav1.NamespaceAll, klabels.Everything())) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d gateways rendered", n, len(gateways))
		}
		time.Sleep(50 * time.Millisecond)
	}

	buf := &bytes.Buffer{}
	gcs := classList.List(metav1.NamespaceAll, klabels.Everything())
	sort.Slice(gcs, func(i, j int) bool { return gcs[i].Name < gcs[j].Name })
	for _, gc := range gcs {
		gc := gc.DeepCopy()
		gc.APIVersion, gc.Kind = "gateway.networking.k8s.io/v1", "GatewayClass"
		b, err := yaml.Marshal(gc)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range order {
		buf.WriteString("---\n")
		buf.WriteString(applied[k])
	}
	if err := os.WriteFile(filepath.Join(dir, "rendered.yaml"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
