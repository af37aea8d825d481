package config

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MarshalYAML makes yaml.Marshal(cfg) write a configuration file that Parse
// reads back to the same values: durations as "30s" rather than nanoseconds,
// sizes as "1MiB", every $ doubled so that ${VAR} expansion leaves the text
// alone, and empty strings written out ("" turns admin.listen off; a missing
// key would get the default). Secrets read from *_file keys are written in
// clear: do not log the result.
func (c *Config) MarshalYAML() (any, error) {
	return encodeValue(reflect.ValueOf(c).Elem()), nil
}

func encodeValue(v reflect.Value) *yaml.Node {
	switch v.Type() {
	case durationType:
		return strNode(formatDuration(time.Duration(v.Int())))
	case sizeType:
		return strNode(Size(v.Int()).String())
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			fv := v.Field(i)
			if (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Map || fv.Kind() == reflect.Slice) && fv.IsNil() {
				continue // absent: nil after parsing; an empty list is written as []
			}
			n.Content = append(n.Content, strNode(name), encodeValue(fv))
		}
		return n
	case reflect.Pointer:
		return encodeValue(v.Elem())
	case reflect.String:
		return strNode(v.String())
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}
	case reflect.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Type().Elem().Kind() != reflect.Struct {
			n.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			n.Content = append(n.Content, encodeValue(v.Index(i)))
		}
		return n
	case reflect.Map, reflect.Interface:
		var n yaml.Node
		if err := n.Encode(v.Interface()); err != nil {
			// The free-form maps hold only what the YAML decoder produced.
			return strNode(err.Error())
		}
		escapeDollars(&n)
		return &n
	}
	panic("config: cannot encode " + v.Type().String())
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(s, "$", "$$")}
}

func escapeDollars(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		n.Value = strings.ReplaceAll(n.Value, "$", "$$")
	}
	for _, c := range n.Content {
		escapeDollars(c)
	}
}
