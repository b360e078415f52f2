package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"kcloud.io/optimizer/pkg/catalog"
)

// catalogFromFile applies a catalog ConfigMap (a ConfigMap manifest, or just its data map) to cat.
func catalogFromFile(cat *catalog.Catalog, path string) (*catalog.Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	data := cm.Data
	if cm.Kind == "" && data == nil {
		if err := yaml.Unmarshal(b, &data); err != nil {
			return nil, fmt.Errorf("catalog %s: want a ConfigMap or a map of its data keys: %w", path, err)
		}
	}
	out, err := cat.WithConfigMap(data)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return out, nil
}
