package handlers

import (
	"fmt"
	"sync"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/views"
)

// statusPages keeps rendered status pages. The page is a pure function of
// its Shell and StatusView (the templates read nothing else), and between
// two changes of the certificate every view of the same person renders the
// same bytes, so it is rendered once and served from here until an input
// changes. The inputs are read afresh for every request; only their
// rendering is reused.
type statusPages struct {
	mu    sync.RWMutex
	pages map[statusPageKey][]byte
}

// maxStatusPages bounds the cache: a page per signed-in person and state,
// about 5 KiB each. When it is full it starts again empty.
const maxStatusPages = 256

// statusPageKey holds every input of the status page by value. StatusView's
// pointers are replaced by what they point to: a pointer would make two
// equal views compare unequal (never stale, but never reused either).
type statusPageKey struct {
	title, path string
	dev         bool
	user        auth.User
	signedIn    bool
	view        views.StatusView // Certificate and Pending set to nil
	certificate views.CertificateView
	pending     views.PendingView
	hasCert     bool
	hasPending  bool
	// deliveries spells out v.Delivery's targets, a slice, comparably.
	deliveries string
	apns       views.APNSView
	hasAPNS    bool
	alerts     views.AlertsView
	hasAlerts  bool
}

func newStatusPageKey(s views.Shell, v views.StatusView) statusPageKey {
	k := statusPageKey{title: s.Title, path: s.Path, dev: s.Dev}
	if s.User != nil {
		k.user, k.signedIn = *s.User, true
	}
	if v.Certificate != nil {
		k.certificate, k.hasCert = *v.Certificate, true
	}
	if v.Pending != nil {
		k.pending, k.hasPending = *v.Pending, true
	}
	if v.Delivery != nil {
		k.deliveries = fmt.Sprintf("%+v", v.Delivery.Targets)
	}
	if v.APNS != nil {
		k.apns, k.hasAPNS = *v.APNS, true
	}
	if v.Alerts != nil {
		k.alerts, k.hasAlerts = *v.Alerts, true
	}
	v.Certificate, v.Pending, v.Delivery, v.APNS, v.Alerts = nil, nil, nil, nil, nil
	k.view = v
	return k
}

// get returns the page rendered for k, if it is kept. The bytes are shared:
// nothing may change them.
func (c *statusPages) get(k statusPageKey) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	page, ok := c.pages[k]
	return page, ok
}

// put keeps page, which must not be changed afterwards, as the rendering of k.
func (c *statusPages) put(k statusPageKey, page []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pages == nil || len(c.pages) >= maxStatusPages {
		c.pages = make(map[statusPageKey][]byte)
	}
	c.pages[k] = page
}
