package frames

// The spec tables of zz_generated_spec.go: the XML's types, fields and definitions as data, so that
// tests can check the generated code and the XML against each other.

type specField struct {
	name, typ           string
	mandatory, multiple bool
	def, requires       string
}

type specChoice struct{ name, value string }

type specType struct {
	part, section, name, class, source, provides string
	descriptor                                   string
	code                                         uint64
	fields                                       []specField
	choices                                      []specChoice
}

type specDefinition struct{ part, name, value string }

//go:generate go run ./internal/gen
