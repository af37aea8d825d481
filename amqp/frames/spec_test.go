package frames

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const specDir = "/usr/share/amqp/specs/1-0"

// The generated tables must equal the XML (when the amqp-specs package is installed).
func TestSpecTablesMatchXML(t *testing.T) {
	if _, err := os.Stat(filepath.Join(specDir, "transport.bare.xml")); err != nil {
		requirePeer(t, "the AMQP 1.0 XML", "amqp-specs")
	}
	type xField struct {
		Name      string `xml:"name,attr"`
		Type      string `xml:"type,attr"`
		Mandatory string `xml:"mandatory,attr"`
		Multiple  string `xml:"multiple,attr"`
		Default   string `xml:"default,attr"`
		Requires  string `xml:"requires,attr"`
	}
	type xType struct {
		Name       string `xml:"name,attr"`
		Class      string `xml:"class,attr"`
		Source     string `xml:"source,attr"`
		Provides   string `xml:"provides,attr"`
		Descriptor *struct {
			Name string `xml:"name,attr"`
			Code string `xml:"code,attr"`
		} `xml:"descriptor"`
		Fields  []xField `xml:"field"`
		Choices []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"choice"`
	}
	type xDoc struct {
		Sections []struct {
			Types       []xType `xml:"type"`
			Definitions []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"definition"`
		} `xml:"section"`
	}
	i, d := 0, 0
	for _, part := range []string{"transport", "messaging", "security", "transactions"} {
		raw, err := os.ReadFile(filepath.Join(specDir, part+".bare.xml"))
		if err != nil {
			t.Fatal(err)
		}
		var doc xDoc
		if err := xml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, s := range doc.Sections {
			for _, x := range s.Types {
				if i >= len(specTypes) {
					t.Fatalf("XML type %s missing from specTypes", x.Name)
				}
				g := specTypes[i]
				i++
				if g.part != part || g.name != x.Name || g.class != x.Class || g.source != x.Source || g.provides != x.Provides {
					t.Errorf("type %s: table %+v", x.Name, g)
				}
				if x.Descriptor != nil {
					hi, lo, _ := strings.Cut(x.Descriptor.Code, ":")
					h, _ := strconv.ParseUint(strings.TrimPrefix(hi, "0x"), 16, 32)
					l, _ := strconv.ParseUint(strings.TrimPrefix(lo, "0x"), 16, 32)
					if g.descriptor != x.Descriptor.Name || g.code != h<<32|l {
						t.Errorf("type %s: descriptor %s %#x, XML %s %s", x.Name, g.descriptor, g.code, x.Descriptor.Name, x.Descriptor.Code)
					}
					if code, ok := descriptorCode(x.Descriptor.Name); !ok || code != g.code || descriptorName(g.code) != x.Descriptor.Name {
						t.Errorf("descriptor lookups for %s", x.Descriptor.Name)
					}
				}
				if len(g.fields) != len(x.Fields) {
					t.Errorf("type %s: %d fields, XML %d", x.Name, len(g.fields), len(x.Fields))
					continue
				}
				for j, f := range x.Fields {
					want := specField{f.Name, f.Type, f.Mandatory == "true", f.Multiple == "true", f.Default, f.Requires}
					if g.fields[j] != want {
						t.Errorf("type %s field %d: %+v, XML %+v", x.Name, j, g.fields[j], want)
					}
				}
				for j, c := range x.Choices {
					if j >= len(g.choices) || g.choices[j] != (specChoice{c.Name, c.Value}) {
						t.Errorf("type %s choice %s", x.Name, c.Name)
					}
				}
			}
			for _, def := range s.Definitions {
				if specDefinitions[d] != (specDefinition{part, def.Name, def.Value}) {
					t.Errorf("definition %s: %+v", def.Name, specDefinitions[d])
				}
				d++
			}
		}
	}
	if i != len(specTypes) || d != len(specDefinitions) {
		t.Errorf("table has %d types / %d definitions, XML %d / %d", len(specTypes), len(specDefinitions), i, d)
	}
}

// The generated Go code must follow the tables: one struct field per XML field, in order,
// defaults applied on decode, mandatory fields enforced, Descriptor right.
func TestGeneratedCodeFollowsTables(t *testing.T) {
	n := 0
	for _, st := range specTypes {
		if st.class != "composite" {
			continue
		}
		n++
		c := newComposite(st.code)
		if c == nil {
			t.Errorf("no Go type for %s", st.name)
			continue
		}
		if c.Descriptor() != st.code {
			t.Errorf("%s: Descriptor %#x", st.name, c.Descriptor())
		}
		rt := reflect.TypeOf(c).Elem()
		if rt.NumField() != len(st.fields) {
			t.Errorf("%s: %d struct fields, %d in the XML", st.name, rt.NumField(), len(st.fields))
			continue
		}
		for i, f := range st.fields {
			if got := rt.Field(i).Name; !strings.EqualFold(got, strings.ReplaceAll(f.name, "-", "")) {
				t.Errorf("%s field %d: Go %s, XML %s", st.name, i, got, f.name)
			}
		}
		// An empty list: defaults applied, or an error naming the first mandatory field.
		var firstMandatory string
		for _, f := range st.fields {
			if f.mandatory {
				firstMandatory = f.name
				break
			}
		}
		empty := append(appendDesc(nil, st.code), 0x45)
		_, err := c.Decode(empty)
		if firstMandatory != "" {
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != firstMandatory || de.Condition != CondDecodeError {
				t.Errorf("%s from an empty list: %v, want an error on %s", st.name, err, firstMandatory)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s from an empty list: %v", st.name, err)
			continue
		}
		v := reflect.ValueOf(c).Elem()
		for i, f := range st.fields {
			fv := v.Field(i)
			if f.def == "" {
				if !fv.IsZero() {
					t.Errorf("%s.%s: absent field decoded as %v", st.name, f.name, fv)
				}
				continue
			}
			if got := defaultString(fv); got != f.def {
				t.Errorf("%s.%s: default %s, XML %s", st.name, f.name, got, f.def)
			}
		}
		// And the defaults are not sent.
		b, err := c.Encode(nil)
		if err != nil || string(b) != string(empty) {
			t.Errorf("%s with defaults encodes to % x %v", st.name, b, err)
		}
	}
	// 9 performatives, error, 5 SASL frames, header, properties, 5 delivery states, source, target,
	// 4 lifetime policies, 5 transaction types.
	if n != 33 {
		t.Errorf("%d composite types, want 33", n)
	}
}

func appendDesc(b []byte, code uint64) []byte { return append(b, 0x00, 0x53, byte(code)) }

// defaultString spells a decoded value the way the XML spells defaults.
func defaultString(v reflect.Value) string {
	if s, ok := v.Interface().(interface{ String() string }); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	}
	return v.String()
}

// The committed zz_generated_*.go are what the generator makes from the installed XML.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := os.Stat(filepath.Join(specDir, "transport.bare.xml")); err != nil {
		requirePeer(t, "the AMQP 1.0 XML", "amqp-specs")
	}
	if testing.Short() {
		t.Skip("runs the generator")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "run", "./internal/gen", "-spec", specDir, "-out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("generator: %v\n%s", err, out)
	}
	for _, f := range []string{"zz_generated_spec.go", "zz_generated_types.go", "zz_generated_codec.go"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, f); string(got) != string(want) {
			t.Errorf("%s is stale: run go generate ./amqp/frames", f)
		}
	}
}
