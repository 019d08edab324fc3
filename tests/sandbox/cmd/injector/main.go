// Command injector stands in for istiod's sidecar injector in the sandbox.
//
// The sandbox has no container runtime, so no istiod runs; yet tests must see
// exactly the pods Istio would produce, chosen by Istio's own webhook
// selectors. This process therefore does two things:
//
//   - serves https://127.0.0.1:<port>/inject/<revision>, mutating pods the way
//     Istio's injector does, with the hub and tag read from that revision's
//     istio-sidecar-injector ConfigMap at request time;
//   - watches webhook configurations and points every webhook that calls an
//     istiod Service at that URL instead. Only clientConfig changes: the
//     selectors stay Istio's, so the real API server picks the revision.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the sandbox (admin)")
	listen := flag.String("listen", "127.0.0.1:9443", "address to serve /inject/<rev> and /validate/<rev> on (loopback only)")
	proxyListen := flag.String("proxy-listen", "127.0.0.1:9444", "address of the CONNECT proxy the API server reaches istiod Services through (loopback only)")
	certDir := flag.String("cert-dir", "", "directory holding (or receiving) ca.crt, tls.crt and tls.key")
	istioNamespace := flag.String("istio-namespace", "istio-system", "namespace of the Istio control planes")
	flag.Parse()
	if *certDir == "" {
		log.Fatal("--cert-dir is required")
	}
	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("--listen %q: %v", *listen, err)
	}
	for _, addr := range []string{*listen, *proxyListen} {
		h, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() {
			log.Fatalf("%q: the sandbox listens on loopback only", addr)
		}
	}

	certs, err := loadOrCreateCerts(*certDir, host, *istioNamespace)
	if err != nil {
		log.Fatalf("webhook certificates: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("client: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	baseURL := fmt.Sprintf("https://%s", net.JoinHostPort(host, port))
	inj := &injector{client: client, istioNamespace: *istioNamespace}
	inj.startCaches(ctx)
	mux := http.NewServeMux()
	mux.HandleFunc("/inject/{rev}", func(w http.ResponseWriter, r *http.Request) { inj.serveInject(w, r, r.PathValue("rev")) })
	mux.HandleFunc("/validate/{rev}", serveValidate)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{
		Addr:              *listen,
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{certs.serving}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	go func() {
		if err := server.ServeTLS(lis, "", ""); err != nil && err != http.ErrServerClosed {
			log.Fatalf("serve: %v", err)
		}
	}()

	plis, err := net.Listen("tcp", *proxyListen)
	if err != nil {
		log.Fatalf("listen %s: %v", *proxyListen, err)
	}
	go serveProxy(ctx, plis, certs.serving, http.HandlerFunc(inj.serveTunnelled))

	p := &caBundlePatcher{client: client, caBundle: certs.caPEM, istioNamespace: *istioNamespace}
	go p.run(ctx)

	log.Printf("injector serving %s/inject/<revision>, and istiod Services through the proxy at %s", baseURL, *proxyListen)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdown)
}
