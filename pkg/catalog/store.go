package catalog

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// Provider gives the catalog in force and its generation, which changes whenever the catalog does:
// a cache of figures worked out from a catalog is keyed by (object version, generation). A fixed
// *Catalog is its own Provider, at generation 0; a Store is the watched one.
type Provider interface {
	Current() (cat *Catalog, generation uint64)
}

// Current makes a fixed catalog a Provider whose generation never changes.
func (c *Catalog) Current() (*Catalog, uint64) { return c, 0 }

// Store is the watched catalog both binaries read: a base catalog (the embedded defaults),
// overlaid by the catalog ConfigMap's data (WithConfigMap) and by the price source ConfigMap's node
// prices (WithNodePrices). Update and UpdatePriceSource refuse a bad ConfigMap and keep the last
// good one, so a typo never takes prices away; the caller reports the error (an event on the
// ConfigMap, a metric). Reads are lock-free.
type Store struct {
	base *Catalog

	mu      sync.Mutex // serialises updates
	data    map[string]string
	prices  map[string]NodePrice
	valid   [2]bool // last update of the catalog and of the price source was good
	current atomic.Pointer[generation]
}

type generation struct {
	cat *Catalog
	n   uint64
}

// NewStore returns a store holding base (catalog.Default() when nil) at generation 1.
func NewStore(base *Catalog) *Store {
	if base == nil {
		base = Default()
	}
	s := &Store{base: base, valid: [2]bool{true, true}}
	s.current.Store(&generation{cat: base, n: 1})
	return s
}

// Current returns the catalog in force and its generation.
func (s *Store) Current() (*Catalog, uint64) {
	g := s.current.Load()
	return g.cat, g.n
}

// Valid reports whether the last catalog and price source updates were accepted.
func (s *Store) Valid() (catalog, priceSource bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid[0], s.valid[1]
}

// Update applies the catalog ConfigMap; nil (deleted, or never created) means the defaults. A
// ConfigMap whose data do not parse is refused: the error names the ConfigMap, the key, the line and
// the field, and the last good catalog stays. changed reports whether the generation moved.
func (s *Store) Update(cm *corev1.ConfigMap) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := map[string]string(nil)
	if cm != nil {
		data = cm.Data
	}
	cat, err := s.build(data, s.prices)
	if err != nil {
		s.valid[0] = false
		return false, fmt.Errorf("catalog ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	s.valid[0] = true
	if maps.Equal(data, s.data) {
		return false, nil // a resync, or a change of labels: the same prices
	}
	s.data = maps.Clone(data)
	s.publish(cat)
	return true, nil
}

// UpdatePriceSource applies the price source ConfigMap (key node-prices.csv, see ParseNodePrices);
// nil means no price source. A bad one is refused like a bad catalog ConfigMap.
func (s *Store) UpdatePriceSource(cm *corev1.ConfigMap) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prices map[string]NodePrice
	if cm != nil {
		if prices, err = ParseNodePrices(cm.Data); err != nil {
			s.valid[1] = false
			return false, fmt.Errorf("price source ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	s.valid[1] = true
	if maps.Equal(prices, s.prices) {
		return false, nil
	}
	cat, err := s.build(s.data, prices)
	if err != nil {
		return false, err // s.data were accepted before; cannot happen
	}
	s.prices = prices
	s.publish(cat)
	return true, nil
}

// build makes the catalog of a ConfigMap's data and node prices over the base.
func (s *Store) build(data map[string]string, prices map[string]NodePrice) (*Catalog, error) {
	cat := s.base
	if len(data) > 0 {
		var err error
		if cat, err = cat.WithConfigMap(data); err != nil {
			return nil, err
		}
	}
	if len(prices) > 0 {
		cat = cat.WithNodePrices(prices)
	}
	return cat, nil
}

// publish makes cat the catalog in force, at the next generation; s.mu is held.
func (s *Store) publish(cat *Catalog) {
	s.current.Store(&generation{cat: cat, n: s.current.Load().n + 1})
}
