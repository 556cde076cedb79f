package configs

import (
	"bytes"
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Marshal writes cfg as YAML in the shape of outpost.yaml: keys in the
// order of the example, durations as "10s", I2C addresses in hex, and only
// the keys that are set (a key left out means its documented default).
// Load(Marshal(cfg)) gives cfg back.
func Marshal(cfg Config) ([]byte, error) {
	n, err := toNode(reflect.ValueOf(cfg), "")
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if n == nil {
		n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b.Bytes(), nil
}

// toNode converts v to a YAML node, or nil when v is its zero value (and
// so left out).
func toNode(v reflect.Value, key string) (*yaml.Node, error) {
	if v.Type() == durationType {
		if v.Int() == 0 {
			return nil, nil
		}
		return scalarNode("!!str", fmtDuration(time.Duration(v.Int()))), nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		if v.Elem().Kind() == reflect.Struct {
			n, err := toNode(v.Elem(), key)
			if n == nil && err == nil {
				n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
			}
			return n, err
		}
		// A set *bool is written even when false: it differs from unset.
		var n yaml.Node
		if err := n.Encode(v.Elem().Interface()); err != nil {
			return nil, err
		}
		return &n, nil
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fieldsOf(v.Type()) {
			fv := fieldByKey(v, f.key)
			child, err := toNode(fv, f.key)
			if err != nil {
				return nil, err
			}
			if child != nil {
				m.Content = append(m.Content, scalarNode("!!str", f.key), child)
			}
		}
		if len(m.Content) == 0 {
			return nil, nil
		}
		return m, nil
	case reflect.Slice:
		if v.Len() == 0 {
			return nil, nil
		}
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range v.Len() {
			child, err := toNode(v.Index(i), key)
			if err != nil {
				return nil, err
			}
			if child == nil {
				child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
			}
			s.Content = append(s.Content, child)
		}
		return s, nil
	case reflect.Map:
		if v.Len() == 0 {
			return nil, nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			if a.CanUint() && b.CanUint() {
				return cmp.Compare(a.Uint(), b.Uint())
			}
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range keys {
			var kn, vn yaml.Node
			if err := kn.Encode(k.Interface()); err != nil {
				return nil, err
			}
			if err := vn.Encode(v.MapIndex(k).Interface()); err != nil {
				return nil, err
			}
			m.Content = append(m.Content, &kn, &vn)
		}
		return m, nil
	case reflect.Func, reflect.Chan, reflect.Interface:
		return nil, nil
	}
	if v.IsZero() {
		return nil, nil
	}
	if key == "address" && v.Kind() == reflect.Uint16 {
		return scalarNode("!!int", fmt.Sprintf("0x%02x", v.Uint())), nil
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return &n, nil
}

// fieldByKey finds the field of struct v whose mapstructure key is key,
// looking into squashed embedded structs.
func fieldByKey(v reflect.Value, key string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if strings.Contains(opts, "squash") && f.Type.Kind() == reflect.Struct {
			if fv := fieldByKey(v.Field(i), key); fv.IsValid() {
				return fv
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func scalarNode(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// fmtDuration writes d the way people write it: 15m, not 15m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
