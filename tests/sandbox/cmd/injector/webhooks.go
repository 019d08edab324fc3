package main

import (
	"bytes"
	"context"
	"log"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// webhookPatcher rewrites the clientConfig of Istio's webhooks so the API
// server reaches this process instead of an istiod Service that has no real
// endpoint here. It never touches selectors, rules or failurePolicy.
//
// Validating webhooks (istio-validator-*, istiod-default-validator) are
// pointed at /validate, which allows everything: their failurePolicy stays
// exactly as Istio wrote it, so a deleted validator behaves as in a real
// cluster and creates of Istio resources are never blocked by an unreachable
// Service.
//
// It watches rather than patching once because plugins create and rebuild
// webhook configurations (for example a tag's MWC copied from a revision's).
type webhookPatcher struct {
	client         kubernetes.Interface
	baseURL        string
	caBundle       []byte
	istioNamespace string
}

func (p *webhookPatcher) run(ctx context.Context) {
	factory := informers.NewSharedInformerFactory(p.client, 10*time.Minute)
	mwc := factory.Admissionregistration().V1().MutatingWebhookConfigurations().Informer()
	vwc := factory.Admissionregistration().V1().ValidatingWebhookConfigurations().Informer()
	_, _ = mwc.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.mutating(ctx, obj.(*admissionregistrationv1.MutatingWebhookConfiguration)) },
		UpdateFunc: func(_, obj any) { p.mutating(ctx, obj.(*admissionregistrationv1.MutatingWebhookConfiguration)) },
	})
	_, _ = vwc.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.validating(ctx, obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)) },
		UpdateFunc: func(_, obj any) { p.validating(ctx, obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)) },
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
}

// revisionOf names the istiod a webhook's Service leads to. Istio names it
// istiod (unrevisioned: revision "default") or istiod-<revision>; a tag's
// own Service istiod-revision-tag-<tag> leads to the tag's target, which the
// configuration carries in its istio.io/rev label.
func (p *webhookPatcher) revisionOf(cc admissionregistrationv1.WebhookClientConfig, labels map[string]string, route string) (string, bool) {
	if cc.Service == nil {
		if cc.URL != nil && strings.HasPrefix(*cc.URL, p.baseURL+route) {
			return strings.TrimPrefix(*cc.URL, p.baseURL+route), true
		}
		return "", false
	}
	if cc.Service.Namespace != p.istioNamespace {
		return "", false
	}
	switch name := cc.Service.Name; {
	case name == "istiod":
		return "default", true
	case strings.HasPrefix(name, "istiod-revision-tag-"):
		if rev := labels["istio.io/rev"]; rev != "" {
			return rev, true
		}
		return "", false
	case strings.HasPrefix(name, "istiod-"):
		return strings.TrimPrefix(name, "istiod-"), true
	}
	return "", false
}

// rewrite returns the clientConfig this process serves for cc, and whether it
// differs from cc.
func (p *webhookPatcher) rewrite(cc admissionregistrationv1.WebhookClientConfig, labels map[string]string, route string) (admissionregistrationv1.WebhookClientConfig, bool) {
	rev, ok := p.revisionOf(cc, labels, route)
	if !ok {
		return cc, false
	}
	url := p.baseURL + route + rev
	if cc.Service == nil && cc.URL != nil && *cc.URL == url && bytes.Equal(cc.CABundle, p.caBundle) {
		return cc, false
	}
	return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: p.caBundle}, true
}

func (p *webhookPatcher) mutating(ctx context.Context, obj *admissionregistrationv1.MutatingWebhookConfiguration) {
	name := obj.Name
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := p.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		for i := range cur.Webhooks {
			if cc, ok := p.rewrite(cur.Webhooks[i].ClientConfig, cur.Labels, "/inject/"); ok {
				cur.Webhooks[i].ClientConfig, changed = cc, true
			}
		}
		if !changed {
			return nil
		}
		_, err = p.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			log.Printf("mutatingwebhookconfiguration %s now calls the injector", name)
		}
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Printf("mutatingwebhookconfiguration %s: %v", name, err)
	}
}

func (p *webhookPatcher) validating(ctx context.Context, obj *admissionregistrationv1.ValidatingWebhookConfiguration) {
	name := obj.Name
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := p.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		for i := range cur.Webhooks {
			if cc, ok := p.rewrite(cur.Webhooks[i].ClientConfig, cur.Labels, "/validate/"); ok {
				cur.Webhooks[i].ClientConfig, changed = cc, true
			}
		}
		if !changed {
			return nil
		}
		_, err = p.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			log.Printf("validatingwebhookconfiguration %s now calls the injector", name)
		}
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Printf("validatingwebhookconfiguration %s: %v", name, err)
	}
}
