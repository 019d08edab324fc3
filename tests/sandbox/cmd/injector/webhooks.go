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

// caBundlePatcher does what istiod's webhook controller does: it writes its
// CA into the caBundle of every webhook that calls an istiod Service, and
// nothing else. Selectors, rules, failurePolicy and the Service stay as Istio
// wrote them.
//
// It watches rather than patching once because plugins and tests create and
// rebuild webhook configurations (for example a tag's MWC).
type caBundlePatcher struct {
	client         kubernetes.Interface
	caBundle       []byte
	istioNamespace string
}

func (p *caBundlePatcher) run(ctx context.Context) {
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

// ours says whether a webhook calls an istiod Service, which this process
// answers for.
func (p *caBundlePatcher) ours(cc *admissionregistrationv1.WebhookClientConfig) bool {
	return cc.Service != nil && cc.Service.Namespace == p.istioNamespace && strings.HasPrefix(cc.Service.Name, "istiod")
}

func (p *caBundlePatcher) needsPatch(ccs []*admissionregistrationv1.WebhookClientConfig) bool {
	for _, cc := range ccs {
		if p.ours(cc) && !bytes.Equal(cc.CABundle, p.caBundle) {
			return true
		}
	}
	return false
}

func (p *caBundlePatcher) patch(ccs []*admissionregistrationv1.WebhookClientConfig) {
	for _, cc := range ccs {
		if p.ours(cc) {
			cc.CABundle = p.caBundle
		}
	}
}

func mutatingConfigs(o *admissionregistrationv1.MutatingWebhookConfiguration) []*admissionregistrationv1.WebhookClientConfig {
	out := make([]*admissionregistrationv1.WebhookClientConfig, len(o.Webhooks))
	for i := range o.Webhooks {
		out[i] = &o.Webhooks[i].ClientConfig
	}
	return out
}

func validatingConfigs(o *admissionregistrationv1.ValidatingWebhookConfiguration) []*admissionregistrationv1.WebhookClientConfig {
	out := make([]*admissionregistrationv1.WebhookClientConfig, len(o.Webhooks))
	for i := range o.Webhooks {
		out[i] = &o.Webhooks[i].ClientConfig
	}
	return out
}

func (p *caBundlePatcher) mutating(ctx context.Context, obj *admissionregistrationv1.MutatingWebhookConfiguration) {
	if !p.needsPatch(mutatingConfigs(obj)) {
		return
	}
	api := p.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, obj.Name, metav1.GetOptions{})
		if err != nil || !p.needsPatch(mutatingConfigs(cur)) {
			return err
		}
		p.patch(mutatingConfigs(cur))
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "istiod"})
		return err
	})
	p.report("mutatingwebhookconfiguration", obj.Name, err)
}

func (p *caBundlePatcher) validating(ctx context.Context, obj *admissionregistrationv1.ValidatingWebhookConfiguration) {
	if !p.needsPatch(validatingConfigs(obj)) {
		return
	}
	api := p.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, obj.Name, metav1.GetOptions{})
		if err != nil || !p.needsPatch(validatingConfigs(cur)) {
			return err
		}
		p.patch(validatingConfigs(cur))
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "istiod"})
		return err
	})
	p.report("validatingwebhookconfiguration", obj.Name, err)
}

func (p *caBundlePatcher) report(kind, name string, err error) {
	switch {
	case err == nil:
		log.Printf("%s %s: caBundle set", kind, name)
	case !apierrors.IsNotFound(err):
		log.Printf("%s %s: %v", kind, name, err)
	}
}
