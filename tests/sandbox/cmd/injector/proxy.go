package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The API server calls a webhook's Service at https://<name>.<namespace>.svc,
// which no network here can reach. The sandbox starts it with HTTPS_PROXY
// pointing at this CONNECT proxy, which ends every tunnel in this process:
// the tunnel's target names the Service, hence the revision, and TLS is
// served for *.<istio namespace>.svc with the CA the caBundlePatcher wrote.
// So the webhook configurations stay exactly as Istio wrote them.

type serviceKey struct{}

// serviceOf returns the Service a tunnelled request was addressed to, as
// <namespace>/<name>.
func serviceOf(r *http.Request) string {
	s, _ := r.Context().Value(serviceKey{}).(string)
	return s
}

// tunnelConn is a hijacked CONNECT connection, remembering its target.
type tunnelConn struct {
	net.Conn
	service string
}

// tunnelListener hands tunnels to an http.Server as if they were accepted.
type tunnelListener struct {
	conns chan net.Conn
	addr  net.Addr
	once  sync.Once
	done  chan struct{}
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tunnelListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *tunnelListener) Addr() net.Addr { return l.addr }

// serveProxy runs the CONNECT proxy on lis and serves the tunnels with
// handler over TLS.
func serveProxy(ctx context.Context, lis net.Listener, cert tls.Certificate, handler http.Handler) {
	tunnels := &tunnelListener{conns: make(chan net.Conn), addr: lis.Addr(), done: make(chan struct{})}
	inner := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if t, ok := tc.NetConn().(*tunnelConn); ok {
					return context.WithValue(ctx, serviceKey{}, t.service)
				}
			}
			return ctx
		},
	}
	go func() {
		if err := inner.ServeTLS(tunnels, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("tunnels: %v", err)
		}
	}()

	outer := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodConnect {
				http.Error(w, "this proxy only tunnels webhook calls to istiod Services", http.StatusMethodNotAllowed)
				return
			}
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			// <service>.<namespace>.svc, kept as <namespace>/<service>.
			name, rest, _ := strings.Cut(host, ".")
			namespace, _, _ := strings.Cut(rest, ".")
			service := namespace + "/" + name
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "cannot hijack", http.StatusInternalServerError)
				return
			}
			conn, buf, err := hj.Hijack()
			if err != nil {
				return
			}
			if buf.Reader.Buffered() > 0 {
				// The client waits for our answer before speaking TLS.
				_ = conn.Close()
				return
			}
			if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
				_ = conn.Close()
				return
			}
			select {
			case tunnels.conns <- &tunnelConn{Conn: conn, service: service}:
			case <-tunnels.done:
				_ = conn.Close()
			}
		}),
	}
	go func() {
		<-ctx.Done()
		_ = outer.Close()
		_ = inner.Close()
		_ = tunnels.Close()
	}()
	if err := outer.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("proxy: %v", err)
	}
}
